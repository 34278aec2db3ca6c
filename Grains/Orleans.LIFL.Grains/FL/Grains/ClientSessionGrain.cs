using System.IO.Hashing;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL.Algorithms;
using Orleans.LIFL.Persistence;
using Orleans.LIFL.Placement;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Grains.FL;

/// <summary>
/// One client's part in one job (key: "job/client"): it joins (becomes available for selection), is told what to do
/// next, and submits updates, which its session checks (shape, dtype, finite values, norm bound, round, duplicate
/// id) before anything reaches the round's aggregator. An accepted update is acknowledged only once it is in the
/// aggregate; sending it again with the same id is harmless.
/// </summary>
public interface IClientSessionGrain : IGrainWithStringKey
{
    Task<JoinedJob> Join();

    Task Leave();

    /// <summary>What to do now, waiting up to <paramref name="wait"/> for the job to change past <paramref name="knownRevision"/>.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:05:00")]
    Task<TrainerTask> NextTask(long knownRevision, TimeSpan wait);

    /// <summary>
    /// Submits an update (float32 deltas in the model's layout). Returns once the update is in the round's aggregate;
    /// refusals throw <see cref="UpdateRejectedException"/> naming the reason, and nothing of the update is kept.
    /// </summary>
    [ResponseTimeout("00:02:00")]
    Task<UpdateReceipt> Submit(UpdateSubmission submission, SharedBuffer update);

    /// <summary>
    /// Submits an update as a managed array, for clients without a shared pool: the values travel in the call's
    /// message and are copied into this silo's pool (counted as copied) before the same checks and aggregation. The
    /// session only reads the array, so the caller's is not deep-copied first (Immutable).
    /// </summary>
    [ResponseTimeout("00:02:00")]
    Task<UpdateReceipt> SubmitValues(UpdateSubmission submission, Immutable<float[]> values);
}

[GenerateSerializer]
public sealed class ClientSessionState
{
    [Id(0)]
    public bool Joined { get; set; }

    /// <summary>The ids of updates accepted in earlier rounds (the latest <see cref="ClientSessionGrain.RememberedIds"/>): reusing one is refused.</summary>
    [Id(1)]
    public List<string> PastUpdateIds { get; set; } = [];
}

// Where the trainer's client enters the cluster, so that its updates land on this silo and go to a leaf here.
[PreferLocalPlacement]
public sealed partial class ClientSessionGrain(
    SharedBufferPool pool,
    ILogger<ClientSessionGrain> logger,
    [PersistentState("session")] IPersistentState<ClientSessionState> stored) : Grain, IClientSessionGrain
{
    public const int RememberedIds = 1_000;
    private const int AggregatorAttempts = 3;

    private readonly Dictionary<string, (UpdateReceipt Receipt, ulong Checksum)> _receipts = new(StringComparer.Ordinal);
    private FlJobDefinition? _definition;
    private long _lastBaseVersion = -1;

    private string JobId => this.GetPrimaryKeyString()[..this.GetPrimaryKeyString().IndexOf('/', StringComparison.Ordinal)];

    private string ClientId => this.GetPrimaryKeyString()[(this.GetPrimaryKeyString().IndexOf('/', StringComparison.Ordinal) + 1)..];

    private IFlJobGrain Job => GrainFactory.GetGrain<IFlJobGrain>(JobId);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var key = this.GetPrimaryKeyString();
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == key.Length - 1)
        {
            throw new ArgumentException($"A client session's key is \"job/client\"; '{key}' is not.");
        }

        return Task.CompletedTask;
    }

    public async Task<JoinedJob> Join()
    {
        _definition = await Job.Register(ClientId);
        if (!stored.State.Joined)
        {
            stored.State.Joined = true;
            await stored.WriteStateAsync();
        }

        LogJoined(logger, ClientId, JobId);
        return new JoinedJob(JobId, ClientId, _definition.Model, _definition.AlgorithmName, _definition.Training);
    }

    public async Task Leave()
    {
        await Job.Unregister(ClientId);
        stored.State.Joined = false;
        await stored.WriteStateAsync();
    }

    public async Task<TrainerTask> NextTask(long knownRevision, TimeSpan wait)
    {
        var definition = _definition ??= await LoadDefinitionAsync();
        var status = await Job.WaitForTrainerView(ClientId, knownRevision, wait);
        var task = new TrainerTask
        {
            Revision = status.Revision,
            Round = status.Round,
            Epoch = status.Epoch,
            ModelVersion = status.ModelVersion,
            Training = definition.Training,
            ProximalMu = definition.AlgorithmName == "fedprox" ? definition.Settings.ProximalMu : 0,
        };

        if (status.Phase == JobPhase.Completed)
        {
            return task with { Kind = TrainerTaskKind.Done };
        }

        if (status.Phase != JobPhase.Collecting || !status.Selected)
        {
            return task with { Kind = TrainerTaskKind.Wait };
        }

        if (definition.IsAsynchronous)
        {
            // FedBuff: a new update whenever the model moved on since this client's last one.
            return task with { Kind = _lastBaseVersion == status.ModelVersion ? TrainerTaskKind.Wait : TrainerTaskKind.Train };
        }

        var mine = _receipts.Values.Where(r => r.Receipt.Round == status.Round).Select(r => r.Receipt).FirstOrDefault();
        return mine is null
            ? task with { Kind = TrainerTaskKind.Train }
            : mine.Epoch == status.Epoch
                ? task with { Kind = TrainerTaskKind.Wait }
                : task with { Kind = TrainerTaskKind.Resend, UpdateId = mine.UpdateId };
    }

    public async Task<UpdateReceipt> Submit(UpdateSubmission submission, SharedBuffer update)
    {
        ArgumentNullException.ThrowIfNull(submission);
        ArgumentNullException.ThrowIfNull(update);
        using (update)
        {
            try
            {
                return await AcceptAsync(submission, update);
            }
            catch (UpdateRejectedException rejected)
            {
                LogRejected(logger, submission.UpdateId, ClientId, JobId, rejected.Message);
                if (rejected.Reason != RejectionReason.UnknownJob)
                {
                    _ = Job.Rejected(submission.Round, rejected.Reason);
                }

                throw;
            }
        }
    }

    public Task<UpdateReceipt> SubmitValues(UpdateSubmission submission, Immutable<float[]> submitted)
    {
        var values = submitted.Value;
        ArgumentNullException.ThrowIfNull(values);
        if (values.Length == 0)
        {
            throw new UpdateRejectedException(RejectionReason.WrongShape, "the update has no values");
        }

        var update = pool.Rent((long)values.Length * sizeof(float));
        values.CopyTo(update.AsSpan<float>());
        pool.CountCopied((long)values.Length * sizeof(float));
        return Submit(submission, update);
    }

    private async Task<UpdateReceipt> AcceptAsync(UpdateSubmission submission, SharedBuffer update)
    {
        if (string.IsNullOrWhiteSpace(submission.UpdateId))
        {
            throw new UpdateRejectedException(RejectionReason.DuplicateUpdateId, "the update has no id");
        }

        var definition = _definition ??= await LoadDefinitionAsync();
        if (!stored.State.Joined)
        {
            throw new UpdateRejectedException(RejectionReason.UnknownClient, $"client {ClientId} has not joined job {JobId}");
        }

        var (checksum, norm) = Validate(definition, submission, update);
        if (_receipts.TryGetValue(submission.UpdateId, out var earlier))
        {
            if (earlier.Checksum != checksum || earlier.Receipt.Round != submission.Round)
            {
                throw new UpdateRejectedException(RejectionReason.DuplicateUpdateId,
                    $"update id {submission.UpdateId} was already used for another update in round {earlier.Receipt.Round}");
            }
        }
        else if (stored.State.PastUpdateIds.Contains(submission.UpdateId))
        {
            throw new UpdateRejectedException(RejectionReason.DuplicateUpdateId, $"update id {submission.UpdateId} was already used in an earlier round");
        }

        for (var attempt = 1; ; attempt++)
        {
            var lease = await Job.Lease(submission.Round, ClientId, submission.BaseVersion, GrainContext.Silo.ToString());
            var weight = (double)submission.Examples;
            var scale = weight;
            if (definition.IsAsynchronous)
            {
                weight *= StalenessWeighting.Weight(lease.Staleness);
                scale = weight;
            }
            else if (definition.Settings.DpClipNorm is { } clip)
            {
                // DP: each clipped update counts once, whatever its examples (the noise is calibrated to that).
                scale = norm > clip ? clip / norm : 1.0;
                weight = 1;
            }

            var input = new AggregationInput
            {
                UpdateId = submission.UpdateId,
                Checksum = checksum,
                Scale = scale,
                Weight = weight,
                Retain = definition.NeedsEveryUpdate,
                Staleness = lease.Staleness,
            };

            AggregatorAddResult added;
            try
            {
                added = await GrainFactory.GetGrain<IAggregatorGrain>(lease.Aggregator).Add(lease.Assignment, input, update);
            }
            catch (Exception error) when (attempt < AggregatorAttempts && error is SiloUnavailableException or GrainCallTimeoutException or RuntimeUnavailableException)
            {
                // The aggregator's silo is gone: the job starts a new epoch, and this update goes to its aggregator.
                LogAggregatorLost(logger, lease.Aggregator, submission.UpdateId, error.Message);
                await Job.AggregatorLost(lease.Round, lease.Epoch);
                continue;
            }

            var receipt = new UpdateReceipt(submission.UpdateId, lease.Round, lease.Epoch, added.AlreadyIncluded, lease.Staleness);
            await RememberAsync(submission, receipt, checksum);
            _ = Job.Progress(lease.Round, lease.Epoch, lease.Aggregator, added.Count, added.Incarnation, GrainContext.Silo.ToString(), !added.AlreadyIncluded);
            return receipt;
        }
    }

    /// <summary>Checks the update's form and values; returns its checksum and L2 norm.</summary>
    private static (ulong Checksum, double Norm) Validate(FlJobDefinition definition, UpdateSubmission submission, SharedBuffer update)
    {
        if (!string.Equals(submission.DType, "float32", StringComparison.OrdinalIgnoreCase))
        {
            throw new UpdateRejectedException(RejectionReason.WrongDType, $"the update's dtype is '{submission.DType}'; the job takes float32");
        }

        if (update.Length % sizeof(float) != 0)
        {
            throw new UpdateRejectedException(RejectionReason.WrongDType, $"the update has {update.Length:N0} bytes, not a whole number of float32 values");
        }

        if (submission.Examples < 1)
        {
            throw new UpdateRejectedException(RejectionReason.BadExamples, $"the update claims {submission.Examples} examples; at least 1 is needed");
        }

        var values = update.AsSpan<float>();
        var checksum = new XxHash3();
        if (UpdateValidation.Check(values, definition.Model.Parameters, definition.MaxUpdateNorm, checksum) is { } problem)
        {
            throw new UpdateRejectedException(
                problem.Kind switch
                {
                    UpdateProblemKind.WrongShape => RejectionReason.WrongShape,
                    UpdateProblemKind.NonFinite => RejectionReason.NonFinite,
                    _ => RejectionReason.NormTooLarge,
                },
                problem.Message);
        }

        return (checksum.GetCurrentHashAsUInt64(), definition.Settings.DpClipNorm is null ? 0 : AggregationKernels.L2Norm(values));
    }

    private async Task RememberAsync(UpdateSubmission submission, UpdateReceipt receipt, ulong checksum)
    {
        // Receipts of earlier rounds are done with: their ids move to the persisted list that refuses reuse.
        foreach (var old in _receipts.Where(r => r.Value.Receipt.Round < receipt.Round).Select(r => r.Key).ToList())
        {
            _receipts.Remove(old);
            stored.State.PastUpdateIds.Add(old);
        }

        if (stored.State.PastUpdateIds.Count > RememberedIds)
        {
            stored.State.PastUpdateIds.RemoveRange(0, stored.State.PastUpdateIds.Count - RememberedIds);
        }

        var isNew = !_receipts.ContainsKey(submission.UpdateId);
        _receipts[submission.UpdateId] = (receipt, checksum);
        _lastBaseVersion = submission.BaseVersion;
        if (isNew)
        {
            await stored.WriteStateAsync();
        }
    }

    private async Task<FlJobDefinition> LoadDefinitionAsync()
    {
        var status = await Job.Status();
        if (status.Phase == JobPhase.None)
        {
            throw new UpdateRejectedException(RejectionReason.UnknownJob, $"there is no job {JobId}");
        }

        if (!stored.State.Joined)
        {
            throw new UpdateRejectedException(RejectionReason.UnknownClient, $"client {ClientId} has not joined job {JobId}");
        }

        // A session reactivated after its silo died: its client joined before, so it is registered again.
        return await Job.Register(ClientId);
    }

    [LoggerMessage(EventId = 7201, Level = LogLevel.Debug, Message = "Client {Client} joined job {Job}")]
    private static partial void LogJoined(ILogger logger, string client, string job);

    [LoggerMessage(EventId = 7202, Level = LogLevel.Information, Message = "Update {UpdateId} of client {Client} refused by job {Job}: {Reason}")]
    private static partial void LogRejected(ILogger logger, string updateId, string client, string job, string reason);

    [LoggerMessage(EventId = 7203, Level = LogLevel.Warning, Message = "Aggregator {Aggregator} is unreachable for update {UpdateId}: {Reason}; asking the job for a new one")]
    private static partial void LogAggregatorLost(ILogger logger, string aggregator, string updateId, string reason);
}
