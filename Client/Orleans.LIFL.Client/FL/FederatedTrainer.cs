using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL;

namespace Orleans.LIFL.Client.FL;

/// <summary>How a <see cref="FederatedTrainer"/> behaves.</summary>
public sealed record FederatedTrainerOptions
{
    /// <summary>How long one wait for the job to change may last before asking again.</summary>
    public TimeSpan PollWait { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>How long the trainer keeps retrying when the cluster cannot be reached (a restart, a failover).</summary>
    public TimeSpan Patience { get; init; } = TimeSpan.FromMinutes(3);
}

/// <summary>What happened to one of a trainer's updates.</summary>
public sealed record TrainerEvent(string ClientId, int Round, string UpdateId, UpdateReceipt? Receipt, UpdateRejectedException? Rejection);

/// <summary>
/// One federated client: joins a job, waits to be selected, reads the round's global model (zero-copy on a silo's
/// node), trains with the user's <see cref="ILocalTrainer"/>, and submits the update (the trained weights minus the
/// global ones). An update is kept until its round is published: when the aggregator holding it is lost, or a call's
/// outcome is unknown, the same update is sent again under the same id, which the job counts once.
/// </summary>
public sealed partial class FederatedTrainer
{
    private readonly IGrainFactory _grains;
    private readonly SharedBufferPool _pool;
    private readonly ILocalTrainer _trainer;
    private readonly FederatedTrainerOptions _options;
    private readonly ILogger _logger;

    public FederatedTrainer(
        IGrainFactory grains, SharedBufferPool pool, string jobId, string clientId, ILocalTrainer trainer, FederatedTrainerOptions? options = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentException.ThrowIfNullOrWhiteSpace(jobId);
        ArgumentException.ThrowIfNullOrWhiteSpace(clientId);
        ArgumentNullException.ThrowIfNull(trainer);
        if (jobId.Contains('/', StringComparison.Ordinal) || clientId.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Job and client ids may not contain '/' (job '{jobId}', client '{clientId}').");
        }

        _grains = grains;
        _pool = pool;
        JobId = jobId;
        ClientId = clientId;
        _trainer = trainer;
        _options = options ?? new FederatedTrainerOptions();
        _logger = logger ?? NullLogger.Instance;
    }

    public string JobId { get; }

    public string ClientId { get; }

    /// <summary>Raised for every update accepted or refused.</summary>
    public event Action<TrainerEvent>? UpdateSettled;

    /// <summary>Updates accepted (each once, however often it was sent).</summary>
    public int Accepted { get; private set; }

    public int Rejected { get; private set; }

    /// <summary>Runs until the job is complete (or <paramref name="cancellationToken"/> fires).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var session = _grains.GetGrain<IClientSessionGrain>($"{JobId}/{ClientId}");
        var job = _grains.GetGrain<IFlJobGrain>(JobId);
        var joined = await PatientlyAsync(() => session.Join(), cancellationToken);
        var revision = -1L;
        Pending? pending = null;
        try
        {
            while (true)
            {
                var task = await PatientlyAsync(() => session.NextTask(revision, _options.PollWait), cancellationToken);
                revision = task.Revision;
                if (pending is not null && (task.Kind == TrainerTaskKind.Done || task.Round > pending.Round))
                {
                    // Its round is published (with it) or over: nothing more to do with it.
                    pending.Dispose();
                    pending = null;
                }

                if (task.Kind == TrainerTaskKind.Done)
                {
                    return;
                }

                if (task.Kind == TrainerTaskKind.Wait)
                {
                    continue;
                }

                if (pending is not null && pending.Round == task.Round)
                {
                    if (pending.Receipt is { } receipt && receipt.Epoch >= task.Epoch)
                    {
                        continue;
                    }

                    // Accepted in an epoch whose aggregator was lost, or never answered: the same update again.
                    await SubmitAsync(session, pending, cancellationToken);
                    continue;
                }

                pending?.Dispose();
                pending = await TrainAsync(job, joined, task, cancellationToken);
                await SubmitAsync(session, pending, cancellationToken);
            }
        }
        finally
        {
            pending?.Dispose();
        }
    }

    private async Task<Pending> TrainAsync(IFlJobGrain job, JoinedJob joined, TrainerTask task, CancellationToken cancellationToken)
    {
        using var global = await PatientlyAsync(() => job.GetModel(task.ModelVersion), cancellationToken);
        var parameters = _pool.Rent(global.Length);
        try
        {
            global.Span.CopyTo(parameters.Span);
            var round = new TrainingRound(JobId, ClientId, task.Round, task.ModelVersion, joined.Model, task.Training, task.ProximalMu, global);
            var examples = await _trainer.TrainAsync(round, parameters, cancellationToken);

            // The update is the change: trained − global, in place.
            TensorPrimitives.Subtract(parameters.AsSpan<float>(), global.AsSpan<float>(), parameters.AsSpan<float>());
            var submission = new UpdateSubmission
            {
                UpdateId = $"{ClientId}-r{task.Round}-{Guid.NewGuid():N}",
                Round = task.Round,
                BaseVersion = task.ModelVersion,
                Examples = examples,
            };
            return new Pending(task.Round, submission, parameters);
        }
        catch
        {
            parameters.Dispose();
            throw;
        }
    }

    private async Task SubmitAsync(IClientSessionGrain session, Pending pending, CancellationToken cancellationToken)
    {
        try
        {
            pending.Receipt = await PatientlyAsync(() => session.Submit(pending.Submission, pending.Update), cancellationToken);
            if (pending.Receipt.AlreadyAccepted && pending.Counted)
            {
                return;
            }

            pending.Counted = true;
            Accepted++;
            UpdateSettled?.Invoke(new TrainerEvent(ClientId, pending.Round, pending.Submission.UpdateId, pending.Receipt, null));
        }
        catch (UpdateRejectedException rejected)
        {
            // Refused for good (closed round, bad update): it will not be sent again.
            Rejected++;
            LogRejected(_logger, ClientId, pending.Submission.UpdateId, rejected.Message);
            pending.Receipt = new UpdateReceipt(pending.Submission.UpdateId, pending.Round, int.MaxValue, false, 0);
            UpdateSettled?.Invoke(new TrainerEvent(ClientId, pending.Round, pending.Submission.UpdateId, null, rejected));
        }
    }

    /// <summary>Retries what fails because the cluster cannot be reached, for up to <see cref="FederatedTrainerOptions.Patience"/>.</summary>
    private async Task<T> PatientlyAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                return await call().WaitAsync(cancellationToken);
            }
            catch (Exception error) when (IsTransient(error) && DateTime.UtcNow - started < _options.Patience)
            {
                LogRetrying(_logger, ClientId, error.Message);
                await Task.Delay(delay, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    private static bool IsTransient(Exception error) =>
        error is SiloUnavailableException or RuntimeUnavailableException or GrainCallTimeoutException or TimeoutException;

    [LoggerMessage(EventId = 7301, Level = LogLevel.Information, Message = "Client {Client}: update {UpdateId} refused: {Reason}")]
    private static partial void LogRejected(ILogger logger, string client, string updateId, string reason);

    [LoggerMessage(EventId = 7302, Level = LogLevel.Debug, Message = "Client {Client}: the cluster is unreachable ({Reason}); retrying")]
    private static partial void LogRetrying(ILogger logger, string client, string reason);

    /// <summary>An update of this client's, kept until its round is over.</summary>
    private sealed class Pending(int round, UpdateSubmission submission, SharedBuffer update) : IDisposable
    {
        public int Round { get; } = round;

        public UpdateSubmission Submission { get; } = submission;

        public SharedBuffer Update { get; } = update;

        public UpdateReceipt? Receipt { get; set; }

        /// <summary>Whether <see cref="Accepted"/> counted it already.</summary>
        public bool Counted { get; set; }

        public void Dispose() => Update.Dispose();
    }
}
