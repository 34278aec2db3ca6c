using System.Diagnostics;
using System.Runtime.CompilerServices;
using Orleans.LIFL.Grains.MoE;
using Orleans.LIFL.Grains.MoE.Model;

namespace Orleans.LIFL.Client.MoE;

/// <summary>How one generation runs and how patient the client is when its session's silo dies.</summary>
public sealed record GenerationOptions
{
    public int MaxTokens { get; init; } = 64;

    /// <summary>0: greedy.</summary>
    public float Temperature { get; init; }

    public ulong Seed { get; init; }

    /// <summary>
    /// Whether the session checkpoints its KV cache, when the deployment does: false saves the checkpoint's cost, and a
    /// failover then recomputes every position instead of restoring them.
    /// </summary>
    public bool Checkpoint { get; init; } = true;

    /// <summary>Names the request (its checkpoints are kept under it); a fresh one when null.</summary>
    public string? RequestId { get; init; }

    /// <summary>How long one read waits for a new token at the session.</summary>
    public TimeSpan ReadWait { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>A read that has not answered this long after its wait is over means the session's silo is gone.</summary>
    public TimeSpan LostAfter { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Session incarnations a generation may go through before it gives up.</summary>
    public int MaxIncarnations { get; init; } = 32;

    /// <summary>How long the client waits for a baseline deployment to finish restarting.</summary>
    public TimeSpan RestartPatience { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>A generated token: its index in the output, its byte, when it arrived and which session incarnation sent it.</summary>
public sealed record GeneratedToken(int Index, int Token, TimeSpan Elapsed, int Incarnation, string Silo)
{
    public byte Byte => (byte)Token;
}

/// <summary>A generation could not go on: the request was refused, or the session failed in a way no failover mends.</summary>
public sealed class MoeGenerationException : Exception
{
    public MoeGenerationException(string message) : base(message)
    {
    }

    public MoeGenerationException(string message, Exception? inner) : base(message, inner)
    {
    }
}

/// <summary>
/// The token-streaming inference API. <see cref="GenerateAsync(string, string, GenerationOptions?, CancellationToken)"/>
/// opens a session grain for the request and reads its tokens as they come. If the session's silo dies, the client
/// opens the next incarnation of the session (on its gateway's silo), which resumes from the request's KV checkpoint;
/// tokens are numbered, so the stream has no gap and no repeat, and decoding is deterministic, so it is the stream a
/// failure-free run gives.
/// </summary>
public sealed class MoeClient(IClusterClient client)
{
    private static readonly TimeSpan[] OpenBackoff =
        [TimeSpan.Zero, TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(25), TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100),
         TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(400), TimeSpan.FromMilliseconds(800), TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(3)];

    /// <summary>Loads the model's experts (primaries and shadows) under <paramref name="deployment"/>.</summary>
    public Task<DeploymentStatus> DeployAsync(string deployment, MoeDeploymentSpec spec) => Deployment(deployment).Deploy(spec);

    /// <summary>Takes <paramref name="deployment"/> out of service: its running generations fail, its experts unload.</summary>
    public Task UndeployAsync(string deployment) => Deployment(deployment).Undeploy();

    public IMoeDeploymentGrain Deployment(string deployment) => client.GetGrain<IMoeDeploymentGrain>(deployment);

    /// <summary>The byte-level tokens of a text (its UTF-8 bytes).</summary>
    public static int[] Tokenize(string text) => MoeModel.Tokenize(text);

    public IAsyncEnumerable<GeneratedToken> GenerateAsync(string deployment, string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        GenerateAsync(deployment, Tokenize(prompt), options, cancellationToken);

    public async IAsyncEnumerable<GeneratedToken> GenerateAsync(
        string deployment, int[] prompt, GenerationOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(deployment);
        ArgumentNullException.ThrowIfNull(prompt);
        options ??= new GenerationOptions();
        var request = new GenerationRequest
        {
            RequestId = options.RequestId ?? Guid.NewGuid().ToString("N"),
            Deployment = deployment,
            Prompt = prompt,
            MaxTokens = options.MaxTokens,
            Temperature = options.Temperature,
            Seed = options.Seed,
            Checkpoint = options.Checkpoint,
        };
        if (GenerationRequest.RequestIdProblem(request.RequestId) is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        var started = Stopwatch.GetTimestamp();
        var incarnation = 0;
        var (session, opened) = await OpenAsync(request, incarnation, restoreFrom: null, [], options, cancellationToken).ConfigureAwait(false);
        incarnation = InferenceSessions.Parse(opened.Session).Incarnation;
        // The tokens yielded so far (the next one's index is their count): a resumed session takes them to recompute its
        // positions past the checkpoint at once.
        var delivered = new List<int>(request.MaxTokens);
        var (checkpointStore, checkpointSilo) = (opened.CheckpointStore, opened.CheckpointSilo);
        long lastArrival = 0;
        long noticed = 0, reopened = 0;
        var resumed = false;
        while (delivered.Count < request.MaxTokens)
        {
            TokenBatch? batch = null;
            var reading = session.Read(delivered.Count, options.ReadWait).WaitAsync(options.ReadWait + options.LostAfter, cancellationToken);

            // A lost session is this wait's expected way out, so its outcome is looked at, not thrown: a first exception
            // through these frames costs the process milliseconds of first-time handling at the start of the failover.
            await ((Task)reading).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (reading.IsCompletedSuccessfully)
            {
                batch = reading.Result;
                if (batch.CheckpointStore is not null)
                {
                    (checkpointStore, checkpointSilo) = (batch.CheckpointStore, batch.CheckpointSilo);
                }
            }
            else if (reading.Exception?.InnerException is { } error && IsSessionLoss(error, cancellationToken))
            {
                _ = Deployment(deployment).ReportSessionFailure(opened.Session, opened.Silo);
            }
            else
            {
                // Cancelled, or an error no failover mends: as thrown by the read.
                await reading.ConfigureAwait(false);
            }

            if (batch?.Failure is { } failure)
            {
                throw new MoeGenerationException($"Generation {request.RequestId} failed in session {opened.Session}: {failure}");
            }

            if (batch is null || batch.Aborted)
            {
                noticed = Stopwatch.GetTimestamp();
                // Tarragon: resume elsewhere from the checkpoint. The baseline: wait for the restart, then prefill again.
                if (opened.Recovery != RecoveryMode.Reroute)
                {
                    var status = await Deployment(deployment).WaitForEpoch(opened.Epoch + 1, options.RestartPatience).WaitAsync(cancellationToken).ConfigureAwait(false);
                    if (status.Epoch <= opened.Epoch)
                    {
                        throw new MoeGenerationException($"Deployment {deployment} did not restart within {options.RestartPatience} after losing session {opened.Session}.");
                    }
                }

                // Tarragon: the next incarnation opens on the silo of the checkpoint it restores from, next to its KV cache.
                var (restoreFrom, openOn) = opened.Recovery == RecoveryMode.Reroute ? (checkpointStore, checkpointSilo) : (null, null);
                (session, opened) = await OpenAsync(request, incarnation + 1, restoreFrom, [.. delivered], options, cancellationToken, openOn).ConfigureAwait(false);
                incarnation = InferenceSessions.Parse(opened.Session).Incarnation;
                (checkpointStore, checkpointSilo) = (opened.CheckpointStore, opened.CheckpointSilo);
                reopened = Stopwatch.GetTimestamp();
                resumed = true;
                continue;
            }

            if (batch.Tokens.Length > 0)
            {
                if (resumed && lastArrival != 0)
                {
                    // What this client waited across the failure, and where it went: the deployment charts it as the
                    // failure's stall. (Several incarnations may have been tried: the phases run from the last loss.)
                    var arrived = Stopwatch.GetTimestamp();
                    var reopenMs = Stopwatch.GetElapsedTime(noticed, reopened).TotalMilliseconds;
                    _ = Deployment(deployment).ReportResume(new SessionResume(
                        opened.Session,
                        Stopwatch.GetElapsedTime(lastArrival, arrived).TotalMilliseconds,
                        Stopwatch.GetElapsedTime(lastArrival, noticed).TotalMilliseconds,
                        reopenMs,
                        Math.Min(opened.RestoreTime.TotalMilliseconds, reopenMs),
                        Stopwatch.GetElapsedTime(reopened, arrived).TotalMilliseconds,
                        opened.RestoredPositions,
                        Math.Max(0, delivered.Count - opened.RestoredTokens)));
                }

                (lastArrival, resumed) = (Stopwatch.GetTimestamp(), false);
            }

            foreach (var token in batch.Tokens)
            {
                delivered.Add(token);
                yield return new GeneratedToken(delivered.Count - 1, token, Stopwatch.GetElapsedTime(started), incarnation, opened.Silo);
            }
        }

        try
        {
            await session.Close().WaitAsync(options.LostAfter, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception error) when (IsSessionLoss(error, cancellationToken))
        {
            // Every token arrived; a session that cannot be told so is collected when idle.
        }
    }

    /// <summary>
    /// Opens incarnation <paramref name="first"/> — on <paramref name="openOn"/> if given, else on the client's gateway —
    /// or, if that fails (its silo is going), the next ones on the gateway.
    /// </summary>
    private async Task<(IInferenceSessionGrain Session, SessionOpened Opened)> OpenAsync(
        GenerationRequest request, int first, string? restoreFrom, int[] delivered, GenerationOptions options, CancellationToken cancellationToken, string? openOn = null)
    {
        Exception? last = null;
        for (var attempt = 0; attempt < OpenBackoff.Length && first + attempt <= options.MaxIncarnations; attempt++)
        {
            if (OpenBackoff[attempt] > TimeSpan.Zero)
            {
                await Task.Delay(OpenBackoff[attempt], cancellationToken).ConfigureAwait(false);
            }

            var session = client.GetGrain<IInferenceSessionGrain>(attempt == 0 && openOn is not null
                ? InferenceSessions.Key(request.RequestId, first, openOn)
                : InferenceSessions.Key(request.RequestId, first + attempt));
            try
            {
                var opened = await session.Open(request, restoreFrom, delivered).ConfigureAwait(false);
                return (session, opened);
            }
            catch (ArgumentException error)
            {
                throw new MoeGenerationException(error.Message, error);
            }
            catch (Exception error) when (IsSessionLoss(error, cancellationToken))
            {
                last = error;
            }
        }

        throw new MoeGenerationException($"No session of request {request.RequestId} could be opened: {last?.Message}", last);
    }

    private static bool IsSessionLoss(Exception error, CancellationToken cancellationToken) =>
        error is not (ArgumentException or MoeGenerationException) && !(error is OperationCanceledException && cancellationToken.IsCancellationRequested);
}
