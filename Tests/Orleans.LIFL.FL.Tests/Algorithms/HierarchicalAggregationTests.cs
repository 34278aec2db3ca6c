using FsCheck;
using FsCheck.Fluent;
using Orleans.LIFL.Grains.FL.Algorithms;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Algorithms;

/// <summary>The weighted mean splits across an aggregation hierarchy: partial sums and weights add up to the flat mean.</summary>
public sealed class HierarchicalAggregationTests
{
    /// <summary>
    /// However the updates are split into groups, summing each group's weighted sum and total weight and then the
    /// groups' partials gives Σ nᵢΔᵢ / Σ nᵢ, as does one flat accumulation.
    /// </summary>
    [Fact]
    public void Group_partials_sum_to_the_flat_weighted_mean()
    {
        var cases =
            from seed in Gen.Choose(0, int.MaxValue)
            from updates in Gen.Choose(1, 40)
            from length in Gen.Choose(1, 300)
            from groups in Gen.Choose(1, updates)
            select (Seed: seed, Updates: updates, Length: length, Groups: groups);

        Prop.ForAll(Arb.From(cases), testCase =>
        {
            var random = new Random(testCase.Seed);
            var deltas = Enumerable.Range(0, testCase.Updates).Select(_ => Reference.RandomVector(random, testCase.Length)).ToArray();
            var examples = Enumerable.Range(0, testCase.Updates).Select(_ => random.Next(1, 5000)).ToArray();
            var groupOf = SplitIntoGroups(random, testCase.Updates, testCase.Groups);

            var expected = new double[testCase.Length];
            double totalExamples = examples.Sum();
            for (var i = 0; i < deltas.Length; i++)
            {
                for (var p = 0; p < testCase.Length; p++)
                {
                    expected[p] += examples[i] * (double)deltas[i][p] / totalExamples;
                }
            }

            var partialSums = Enumerable.Range(0, testCase.Groups).Select(_ => new float[testCase.Length]).ToArray();
            var partialWeights = new long[testCase.Groups];
            for (var i = 0; i < deltas.Length; i++)
            {
                AggregationKernels.Accumulate(partialSums[groupOf[i]], deltas[i], examples[i]);
                partialWeights[groupOf[i]] += examples[i];
            }

            var hierarchical = new float[testCase.Length];
            foreach (var partial in partialSums)
            {
                AggregationKernels.Accumulate(hierarchical, partial, 1);
            }

            AggregationKernels.Scale(hierarchical, 1f / partialWeights.Sum());

            var flat = new float[testCase.Length];
            for (var i = 0; i < deltas.Length; i++)
            {
                AggregationKernels.Accumulate(flat, deltas[i], examples[i]);
            }

            AggregationKernels.Scale(flat, 1f / examples.Sum());

            Reference.AssertClose(expected, hierarchical, 1e-5);
            Reference.AssertClose(expected, flat, 1e-5);
        }).QuickCheckThrowOnFailure();
    }

    /// <summary>Each of <paramref name="updates"/> in one of <paramref name="groups"/> contiguous, non-empty groups.</summary>
    private static int[] SplitIntoGroups(Random random, int updates, int groups)
    {
        var cuts = Enumerable.Range(1, updates - 1).OrderBy(_ => random.Next()).Take(groups - 1).Order().ToArray();
        var groupOf = new int[updates];
        for (var i = 0; i < updates; i++)
        {
            groupOf[i] = cuts.Count(cut => cut <= i);
        }

        return groupOf;
    }
}
