using Orleans.LIFL.Diagnostics;

namespace Orleans.LIFL.Benchmarks.Round;

/// <summary>
/// Samples, every few milliseconds, the memory a run adds: the silo processes' private memory (what managed arrays
/// take) plus the pages the node's shared pool holds (counted once, however many processes map it; a freed block
/// keeps its pages, so this is the most the pool ever had written at once).
/// </summary>
internal sealed class MemorySampler : IAsyncDisposable
{
    private readonly IReadOnlyList<int> _pids;
    private readonly Func<long> _poolUsed;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampling;
    private readonly long _baselineHeaps;
    private readonly long _baselinePool;
    private long _peak;
    private long _peakHeaps;
    private long _peakPool;

    public MemorySampler(IReadOnlyList<int> pids, Func<long> poolUsed)
    {
        _pids = pids;
        _poolUsed = poolUsed;
        (_baselineHeaps, _baselinePool) = Parts();
        Baseline = _baselineHeaps + _baselinePool;
        (_peak, _peakHeaps, _peakPool) = (Baseline, _baselineHeaps, _baselinePool);
        _sampling = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                var (heaps, pool) = Parts();
                _peak = Math.Max(_peak, heaps + pool);
                _peakHeaps = Math.Max(_peakHeaps, heaps);
                _peakPool = Math.Max(_peakPool, pool);
            }
        });
    }

    /// <summary>The figure before the run.</summary>
    public long Baseline { get; }

    /// <summary>The most the run added over <see cref="Baseline"/>.</summary>
    public long PeakGrowth => Math.Max(0, _peak - Baseline);

    /// <summary>The most the run added to the silo processes' private memory alone.</summary>
    public long PeakHeapGrowth => Math.Max(0, _peakHeaps - _baselineHeaps);

    /// <summary>The most the run added to what the shared pool holds alone.</summary>
    public long PeakPoolGrowth => Math.Max(0, _peakPool - _baselinePool);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _sampling;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private (long Heaps, long Pool) Parts() => (_pids.Sum(ProcessResources.PrivateResidentBytes), _poolUsed());
}
