namespace Orleans.LIFL.PostgreSql;

/// <summary>
/// Runs concurrent requests of one kind as one statement (group commit): a request that finds none in flight goes at
/// once, alone; those that arrive while a statement runs wait for it and then go together, up to
/// <paramref name="maxBatch"/> at a time. A burst — a silo activating the sessions of a dead one, every session of a
/// finished generation deactivating — then costs a round trip or two over one pooled connection instead of a
/// connection each, which the pool would open for the burst (a server process each, tens of milliseconds of CPU) and
/// close again once idle. A failed statement fails every request it carried.
/// </summary>
/// <param name="run">Runs one batch; returns one result per request, in order.</param>
/// <param name="shareEqual">
/// Whether a request equal to one waiting or in flight takes that one's result instead of being run again (reads: a
/// burst of lookups of one grain asks the server once). Such a request may miss a change made while the one it joined
/// ran, as a request made just before would; a request made once that result is out runs anew.
/// </param>
internal sealed class StatementBatcher<TRequest, TResult>(Func<IReadOnlyList<TRequest>, Task<TResult[]>> run, int maxBatch = 256, bool shareEqual = false)
    where TRequest : notnull
{
    private readonly Lock _lock = new();
    private readonly Dictionary<TRequest, Task<TResult>> _outstanding = [];
    private List<(TRequest Request, TaskCompletionSource<TResult> Done)> _waiting = [];
    private bool _running;
    private long _statements;

    /// <summary>Statements run so far.</summary>
    public long Statements => Interlocked.Read(ref _statements);

    public Task<TResult> RunAsync(TRequest request)
    {
        var done = new TaskCompletionSource<TResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        bool start;
        lock (_lock)
        {
            if (shareEqual)
            {
                if (_outstanding.TryGetValue(request, out var outstanding))
                {
                    return outstanding;
                }

                _outstanding[request] = done.Task;
            }

            _waiting.Add((request, done));
            start = !_running;
            _running = true;
        }

        if (start)
        {
            _ = DrainAsync();
        }

        return done.Task;
    }

    private async Task DrainAsync()
    {
        while (true)
        {
            List<(TRequest Request, TaskCompletionSource<TResult> Done)> batch;
            lock (_lock)
            {
                if (_waiting.Count == 0)
                {
                    _running = false;
                    return;
                }

                if (_waiting.Count <= maxBatch)
                {
                    (batch, _waiting) = (_waiting, []);
                }
                else
                {
                    batch = _waiting.GetRange(0, maxBatch);
                    _waiting.RemoveRange(0, maxBatch);
                }
            }

            Interlocked.Increment(ref _statements);
            TResult[]? results = null;
            Exception? failure = null;
            try
            {
                results = await run([.. batch.Select(b => b.Request)]).ConfigureAwait(false);
                if (results.Length != batch.Count)
                {
                    throw new InvalidOperationException($"A batch of {batch.Count} requests gave {results.Length} results.");
                }
            }
            catch (Exception error)
            {
                failure = error;
            }

            if (shareEqual)
            {
                // Out before the results: a request made from now on runs anew rather than take this answer.
                lock (_lock)
                {
                    batch.ForEach(b => _outstanding.Remove(b.Request));
                }
            }

            for (var i = 0; i < batch.Count; i++)
            {
                if (failure is null)
                {
                    batch[i].Done.TrySetResult(results![i]);
                }
                else
                {
                    batch[i].Done.TrySetException(failure);
                    _ = batch[i].Done.Task.Exception; // observed: a shared failure may have no other reader
                }
            }
        }
    }
}
