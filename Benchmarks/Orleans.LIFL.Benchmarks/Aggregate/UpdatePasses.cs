using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Orleans.LIFL.Grains.FL.Algorithms;

namespace Orleans.LIFL.Benchmarks.Aggregate;

/// <summary>What a pass stands for in the report.</summary>
internal enum PassRole
{
    /// <summary>The aggregators' kernel as they run it when several updates are pending: all folded in one call.</summary>
    Kernel,

    /// <summary>The same kernel one update at a time (an update arriving alone).</summary>
    SingleKernel,
    Scalar,
    Probe,
}

/// <summary>One pass over the next update(s); returns the bytes of update it read.</summary>
internal delegate long UpdatePassBody(Span<float> sum, UpdateBuffers buffers);

/// <summary>One way of going over an update, timed once per round.</summary>
/// <param name="Key">The name in the JSON details ("probe_vector256_4").</param>
/// <param name="Description">What it is, for the notes and the progress lines.</param>
internal sealed record UpdatePass(string Key, string Description, PassRole Role, UpdatePassBody Body);

/// <summary>
/// The passes the aggregate benchmark times: the kernel, a scalar loop that does the same, and plain reads of the
/// update (the read-bandwidth probe; the fastest of them is the ceiling of the kernel's read of the update).
/// </summary>
internal static class UpdatePasses
{
    public static IReadOnlyList<UpdatePass> Create(float weight)
    {
        var weights = Enumerable.Repeat(weight, AggregateBenchmark.Updates).ToArray();
        var passes = new List<UpdatePass>
        {
            new("kernel", $"AggregationKernels.AccumulateMany, {AggregateBenchmark.Updates} updates in one call", PassRole.Kernel, (sum, buffers) =>
            {
                var updates = Enumerable.Range(0, AggregateBenchmark.Updates).Select(_ => buffers.NextUpdateMemory()).ToArray();
                AggregationKernels.AccumulateMany(sum, updates, weights);
                return (long)updates.Length * sum.Length * sizeof(float);
            }),
            new("kernel_single", "AggregationKernels.Accumulate, one update per pass", PassRole.SingleKernel, (sum, buffers) =>
            {
                AggregationKernels.Accumulate(sum, buffers.NextUpdate(), weight);
                return (long)sum.Length * sizeof(float);
            }),
            new("scalar", "scalar loop sum[i] += w * update[i]", PassRole.Scalar, (sum, buffers) =>
            {
                ScalarAccumulate(sum, buffers.NextUpdate(), weight);
                return (long)sum.Length * sizeof(float);
            }),
            Probe("probe_vector256_4", "Vector256 sum, 4 accumulators", SumVector256),
            Probe("probe_vector256_halves", "Vector256 sum of both halves at once (2 streams)", SumVector256Halves),
            Probe("probe_tensor_primitives", "TensorPrimitives.Sum", static update => TensorPrimitives.Sum(update)),
        };
        if (Vector512.IsHardwareAccelerated)
        {
            passes.Add(Probe("probe_vector512_4", "Vector512 sum, 4 accumulators", SumVector512));
        }

        return passes;
    }

    private delegate float ReadPass(ReadOnlySpan<float> update);

    /// <summary>A read of the next update; its result only keeps the read from being optimized away.</summary>
    private static UpdatePass Probe(string key, string description, ReadPass read) =>
        new(key, description, PassRole.Probe, (_, buffers) =>
        {
            var update = buffers.NextUpdate();
            Sink = read(update);
            return (long)update.Length * sizeof(float);
        });

    /// <summary>Where the probes' sums go, so that the JIT cannot drop the reads.</summary>
    internal static float Sink { get; private set; }

    /// <summary>The loop the kernel replaces. The JIT does not vectorize loops, so this stays one float at a time.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static void ScalarAccumulate(Span<float> sum, ReadOnlySpan<float> update, float weight)
    {
        for (var i = 0; i < sum.Length; i++)
        {
            sum[i] += weight * update[i];
        }
    }

    // The probes: independent accumulators so that the adds never wait on each other and only the loads limit them.
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static float SumVector256(ReadOnlySpan<float> values)
    {
        ref var start = ref MemoryMarshal.GetReference(values);
        var width = (nuint)Vector256<float>.Count;
        var length = (nuint)values.Length;
        var (s0, s1, s2, s3) = (Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero);
        nuint i = 0;
        for (; i + (4 * width) <= length; i += 4 * width)
        {
            s0 += Vector256.LoadUnsafe(ref start, i);
            s1 += Vector256.LoadUnsafe(ref start, i + width);
            s2 += Vector256.LoadUnsafe(ref start, i + (2 * width));
            s3 += Vector256.LoadUnsafe(ref start, i + (3 * width));
        }

        return Vector256.Sum(s0 + s1 + (s2 + s3)) + SumScalar(values[(int)i..]);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static float SumVector512(ReadOnlySpan<float> values)
    {
        ref var start = ref MemoryMarshal.GetReference(values);
        var width = (nuint)Vector512<float>.Count;
        var length = (nuint)values.Length;
        var (s0, s1, s2, s3) = (Vector512<float>.Zero, Vector512<float>.Zero, Vector512<float>.Zero, Vector512<float>.Zero);
        nuint i = 0;
        for (; i + (4 * width) <= length; i += 4 * width)
        {
            s0 += Vector512.LoadUnsafe(ref start, i);
            s1 += Vector512.LoadUnsafe(ref start, i + width);
            s2 += Vector512.LoadUnsafe(ref start, i + (2 * width));
            s3 += Vector512.LoadUnsafe(ref start, i + (3 * width));
        }

        return Vector512.Sum(s0 + s1 + (s2 + s3)) + SumScalar(values[(int)i..]);
    }

    /// <summary>Both halves side by side: two sequential streams keep more cache-line fetches in flight than one.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static float SumVector256Halves(ReadOnlySpan<float> values)
    {
        ref var start = ref MemoryMarshal.GetReference(values);
        var width = (nuint)Vector256<float>.Count;
        var half = (nuint)values.Length / 2 / (2 * width) * (2 * width);
        var (s0, s1, s2, s3) = (Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero, Vector256<float>.Zero);
        for (nuint i = 0; i < half; i += 2 * width)
        {
            s0 += Vector256.LoadUnsafe(ref start, i);
            s1 += Vector256.LoadUnsafe(ref start, i + width);
            s2 += Vector256.LoadUnsafe(ref start, half + i);
            s3 += Vector256.LoadUnsafe(ref start, half + i + width);
        }

        return Vector256.Sum(s0 + s1 + (s2 + s3)) + SumScalar(values[(int)(2 * half)..]);
    }

    private static float SumScalar(ReadOnlySpan<float> values)
    {
        var total = 0f;
        foreach (var value in values)
        {
            total += value;
        }

        return total;
    }
}
