using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Grains.FL;

/// <summary>
/// A federated-learning job (key: the job id): its definition, the round life cycle (select → collect → aggregate →
/// publish), client selection, the global model's versions and the round metrics. Its state and every published model
/// are persisted, so it resumes from its last published round after the whole cluster restarted.
/// </summary>
public interface IFlJobGrain : IGrainWithStringKey
{
    /// <summary>
    /// Creates the job with its initial global model (float32, the definition's layout). Creating it again with the
    /// same definition returns its status; with another definition, or a model of the wrong size or with non-finite
    /// values, fails with an error naming what is wrong.
    /// </summary>
    Task<JobStatus> Create(FlJobDefinition definition, SharedBuffer initialModel);

    [AlwaysInterleave]
    Task<JobStatus> Status();

    /// <summary>
    /// The status once its <see cref="JobStatus.Revision"/> exceeds <paramref name="knownRevision"/> (a round starting,
    /// clients selected, a new epoch, a model published, the job completed), or after <paramref name="wait"/>. The close
    /// of a round's collection is not such a change (trainers have nothing to do about it): <see cref="WaitForProgress"/> sees it.
    /// </summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:05:00")]
    Task<JobStatus> WaitForChange(long knownRevision, TimeSpan wait);

    /// <summary>Like <see cref="WaitForChange"/>, but answers with <paramref name="clientId"/>'s view only (what its session needs).</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:05:00")]
    Task<TrainerView> WaitForTrainerView(string clientId, long knownRevision, TimeSpan wait);

    /// <summary>Like <see cref="WaitForChange"/>, but also wakes for every accepted or refused update (for progress displays).</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:05:00")]
    Task<JobStatus> WaitForProgress(long knownProgress, TimeSpan wait);

    /// <summary>The global model of <paramref name="version"/> (the current one is in memory; older ones come from storage).</summary>
    [AlwaysInterleave]
    Task<SharedBuffer> GetModel(long version);

    /// <summary>A client becomes available for selection (its session calls this when it joins).</summary>
    Task<FlJobDefinition> Register(string clientId);

    Task Unregister(string clientId);

    /// <summary>
    /// Where an update of <paramref name="round"/> goes (a leaf aggregator on <paramref name="silo"/>, the session's, when
    /// there is one), or why it is refused (closed round, not selected, too stale).
    /// </summary>
    Task<AggregationLease> Lease(int round, string clientId, long baseVersion, string silo);

    /// <summary>
    /// A leaf <paramref name="aggregator"/> of the round (activation <paramref name="incarnation"/>) took an update from a
    /// session on <paramref name="silo"/>; it now has <paramref name="accepted"/>. Another activation than the one
    /// assigned means the assigned one died with its updates.
    /// </summary>
    [OneWay]
    Task Progress(int round, int epoch, string aggregator, int accepted, Guid incarnation, string silo, bool isNew);

    [OneWay]
    Task Rejected(int round, RejectionReason reason);

    /// <summary>The aggregator of the round's <paramref name="epoch"/> is gone: a new epoch begins and what it held must be sent again.</summary>
    Task AggregatorLost(int round, int epoch);

    /// <summary>Records the test accuracy of a published model (shown with the round's metrics).</summary>
    Task ReportAccuracy(long modelVersion, double accuracy);
}
