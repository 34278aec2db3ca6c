using System.Numerics.Tensors;
namespace Orleans.LIFL.Grains.FL.Algorithms;

/// <summary>
/// What every server optimizer shares: the model's length, the step count, moments that start at zero, their export
/// and import, and a step taken block by block so that all of an optimizer's passes over a block run while it is in
/// the L1 cache, however many arrays the update rule reads.
/// </summary>
internal abstract class ServerOptimizer : IServerOptimizer
{
    /// <summary>Five arrays of this many floats (global, delta, two moments, scratch) stay within a 32 KB L1 cache.</summary>
    protected const int BlockLength = 1024;

    private readonly float[]? _firstMoment;
    private readonly float[]? _secondMoment;

    /// <param name="moments">How many per-parameter moments the algorithm keeps: 0, 1 (first) or 2 (first and second).</param>
    protected ServerOptimizer(string name, int parameters, int moments)
    {
        Name = name;
        Parameters = parameters;
        _firstMoment = moments >= 1 ? new float[parameters] : null;
        _secondMoment = moments >= 2 ? new float[parameters] : null;
    }

    public string Name { get; }

    /// <summary>The length of the model vector.</summary>
    public int Parameters { get; }

    /// <summary>How many steps the optimizer has taken, counting those of an imported state.</summary>
    public long Steps { get; private set; }

    public void Step(Span<float> global, ReadOnlySpan<float> meanDelta)
    {
        AggregationKernels.RequireSameLength(Parameters, global.Length, nameof(global));
        AggregationKernels.RequireSameLength(Parameters, meanDelta.Length, nameof(meanDelta));
        for (var start = 0; start < Parameters; start += BlockLength)
        {
            var length = Math.Min(BlockLength, Parameters - start);
            StepBlock(
                global.Slice(start, length),
                meanDelta.Slice(start, length),
                _firstMoment is null ? default : _firstMoment.AsSpan(start, length),
                _secondMoment is null ? default : _secondMoment.AsSpan(start, length));
        }

        Steps++;
    }

    public void Step(ReadOnlySpan<float> global, IReadOnlyList<ReadOnlyMemory<float>> sums, float scale, Span<float> next)
    {
        ArgumentNullException.ThrowIfNull(sums);
        if (sums.Count == 0)
        {
            throw new ArgumentException("A step needs at least one sum.", nameof(sums));
        }

        AggregationKernels.RequireSameLength(Parameters, global.Length, nameof(global));
        foreach (var sum in sums)
        {
            AggregationKernels.RequireSameLength(Parameters, sum.Length, nameof(sums));
        }

        AggregationKernels.RequireSameLength(Parameters, next.Length, nameof(next));
        if (!float.IsFinite(scale))
        {
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "The scale of the sum must be finite.");
        }

        Span<float> meanDelta = stackalloc float[BlockLength];
        for (var start = 0; start < Parameters; start += BlockLength)
        {
            var length = Math.Min(BlockLength, Parameters - start);
            var mean = meanDelta[..length];
            var block = next.Slice(start, length);
            // Read before the stretch of next is written: next may be the first sum's memory.
            sums[0].Span.Slice(start, length).CopyTo(mean);
            for (var k = 1; k < sums.Count; k++)
            {
                TensorPrimitives.Add(mean, sums[k].Span.Slice(start, length), mean);
            }

            TensorPrimitives.Multiply(mean, scale, mean);
            global.Slice(start, length).CopyTo(block);
            StepBlock(
                block,
                mean,
                _firstMoment is null ? default : _firstMoment.AsSpan(start, length),
                _secondMoment is null ? default : _secondMoment.AsSpan(start, length));
        }

        Steps++;
    }

    /// <summary>One block of a step; a moment the algorithm does not keep is an empty span.</summary>
    protected abstract void StepBlock(Span<float> global, ReadOnlySpan<float> meanDelta, Span<float> firstMoment, Span<float> secondMoment);

    public ServerOptimizerState ExportState() => new(Name, Steps, _firstMoment?.ToArray(), _secondMoment?.ToArray());

    public void ImportState(ServerOptimizerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!string.Equals(state.Algorithm, Name, StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"The state is of algorithm '{state.Algorithm}'; this optimizer is '{Name}'.", nameof(state));
        }

        if (state.Steps < 0)
        {
            throw new ArgumentException($"The state has taken {state.Steps} steps; a step count cannot be negative.", nameof(state));
        }

        var problem = MomentProblem(_firstMoment, state.FirstMoment, "first") ?? MomentProblem(_secondMoment, state.SecondMoment, "second");
        if (problem is not null)
        {
            throw new ArgumentException(problem, nameof(state));
        }

        // Copied, not adopted: the caller keeps its state object, and the next step must not change it.
        state.FirstMoment?.CopyTo(_firstMoment!, 0);
        state.SecondMoment?.CopyTo(_secondMoment!, 0);
        Steps = state.Steps;
    }

    private string? MomentProblem(float[]? own, float[]? imported, string which) => (own, imported) switch
    {
        (null, null) => null,
        (null, _) => $"The state has a {which} moment, but {Name} keeps none.",
        (_, null) => $"The state has no {which} moment; {Name} needs one of {own.Length:N0} values.",
        _ when imported.Length != own.Length => $"The state's {which} moment has {imported.Length:N0} values; the model has {own.Length:N0}.",
        _ => null,
    };
}
