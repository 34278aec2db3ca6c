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
internal sealed class StatementBatcher<TRequest, TResult>(Func<IReadOnlyList<TRequest>, Task<TResult[]>> run, int maxBatch = 256)
{
    private readonly Lock _lock = new();
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
            try
            {
                var results = await run([.. batch.Select(b => b.Request)]).ConfigureAwait(false);
                if (results.Length != batch.Count)
                {
                    throw new InvalidOperationException($"A batch of {batch.Count} requests gave {results.Length} results.");
                }

                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Done.TrySetResult(results[i]);
                }
            }
            catch (Exception error)
            {
                foreach (var (_, done) in batch)
                {
                    done.TrySetException(error);
                }
            }
        }
    }
}
