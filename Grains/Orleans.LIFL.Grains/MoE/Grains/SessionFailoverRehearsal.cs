using Orleans.LIFL.Grains.MoE.Model;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// A session failover played through once on a silo, the way a client plays it after the session's silo died: a short
/// generation opened on the silo is stopped half way (its checkpoint kept, as a killed session's is), and the next
/// incarnation is opened next to that checkpoint with the tokens read so far, restores it, recomputes the positions past
/// it and decodes the rest. Run when a deployment is made, on every silo: the code a real failover takes (a pinned
/// session's activation, the store's restore and its codecs, the batched recompute, the move of the checkpoint to the
/// resumed session's store) is then not run for the first time, nor compiled, in the stall of the first real failure.
/// </summary>
internal static class SessionFailoverRehearsal
{
    /// <summary>Tokens of the rehearsed generation; it is stopped once it has <see cref="StopAfter"/> of them.</summary>
    public const int Tokens = 16;

    public const int StopAfter = 8;

    private static readonly int[] Prompt = MoeModel.Tokenize("rehearsing a failover");

    private static readonly TimeSpan ReadWait = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Rehearses the failover of a session of <paramref name="deployment"/> opened on <paramref name="silo"/>, under
    /// <paramref name="requestId"/>; returns the silo the second incarnation ran on. Throws if a step fails or the two
    /// incarnations disagree on a token (each checks the tokens it is given against its own).
    /// </summary>
    public static async Task<string> RunAsync(IGrainFactory grains, string deployment, string requestId, string silo, CancellationToken cancellationToken)
    {
        var request = new GenerationRequest { RequestId = requestId, Deployment = deployment, Prompt = Prompt, MaxTokens = Tokens };
        var first = grains.GetGrain<IInferenceSessionGrain>(InferenceSessions.Key(requestId, 0, silo));
        var opened = await first.Open(request, restoreFrom: null, []).WaitAsync(cancellationToken);
        var (store, storeSilo) = (opened.CheckpointStore, opened.CheckpointSilo);
        var tokens = new List<int>(Tokens);
        while (tokens.Count < StopAfter)
        {
            var batch = await ReadAsync(first, tokens, cancellationToken);
            if (batch.CheckpointStore is not null)
            {
                (store, storeSilo) = (batch.CheckpointStore, batch.CheckpointSilo);
            }

            if (batch.Done)
            {
                break;
            }
        }

        // Stopped without a flush or a drop of its checkpoint: what the store committed so far is what a resumed session finds.
        await first.Abort("rehearsal of its silo's failure").WaitAsync(cancellationToken);
        var resumedOn = storeSilo ?? silo;
        var resumed = grains.GetGrain<IInferenceSessionGrain>(InferenceSessions.Key(requestId, 1, resumedOn));
        await resumed.Open(request, store, [.. tokens]).WaitAsync(cancellationToken);
        while (tokens.Count < Tokens && !(await ReadAsync(resumed, tokens, cancellationToken)).Done)
        {
        }

        // Drops the checkpoint in both stores.
        await resumed.Close().WaitAsync(cancellationToken);
        return resumedOn;
    }

    private static async Task<TokenBatch> ReadAsync(IInferenceSessionGrain session, List<int> tokens, CancellationToken cancellationToken)
    {
        var batch = await session.Read(tokens.Count, ReadWait).WaitAsync(cancellationToken);
        if (batch.Failure is { } failure)
        {
            throw new InvalidOperationException($"the rehearsed session {session.GetPrimaryKeyString()} failed: {failure}");
        }

        if (batch.Aborted)
        {
            throw new InvalidOperationException($"the rehearsed session {session.GetPrimaryKeyString()} was stopped: the deployment restarts");
        }

        tokens.AddRange(batch.Tokens);
        return batch;
    }
}
