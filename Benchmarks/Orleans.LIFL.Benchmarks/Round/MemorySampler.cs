using Orleans.LIFL.Dataplane;
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
    private readonly Func<SharedPoolStatistics> _pool;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampling;
    private readonly long _baselineHeaps;
    private readonly long _baselinePool;
    private long _peak;
    private long _peakHeaps;
    private long _peakPool;
    private long _peakRequested;

    public MemorySampler(IReadOnlyList<int> pids, Func<SharedPoolStatistics> pool)
    {
        _pids = pids;
        _pool = pool;
        (_baselineHeaps, _baselinePool, _) = Parts();
        Baseline = _baselineHeaps + _baselinePool;
        (_peak, _peakHeaps, _peakPool) = (Baseline, _baselineHeaps, _baselinePool);
        _sampling = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                var (heaps, pool, requested) = Parts();
                _peak = Math.Max(_peak, heaps + pool);
                _peakHeaps = Math.Max(_peakHeaps, heaps);
                _peakPool = Math.Max(_peakPool, pool);
                _peakRequested = Math.Max(_peakRequested, requested);
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

    /// <summary>The most the pool's live buffers asked for at once (the written pages can exceed it: a freed block keeps its pages).</summary>
    public long PeakPoolRequested => _peakRequested;

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

    private (long Heaps, long Pool, long Requested) Parts()
    {
        var pool = _pool();
        return (_pids.Sum(ProcessResources.PrivateResidentBytes), pool.ResidentBytes, pool.RequestedBytes);
    }
}
