using Microsoft.Extensions.Logging;

namespace Orleans.LIFL.Runtime.MembershipService;

/// <summary>
/// One silo's access to the membership table: it writes its own status with optimistic version checks and keeps
/// the latest <see cref="ClusterView"/>, telling listeners when it changes.
/// </summary>
internal sealed partial class MembershipTableManager
{
    private const int MaxWriteAttempts = 32;
    private readonly IMembershipTable _table;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _refreshGate = new(1, 1);
    private ClusterView _view = ClusterView.Empty;

    public MembershipTableManager(IMembershipTable table, ILogger<MembershipTableManager> logger)
    {
        _table = table;
        _logger = logger;
    }

    public ClusterView CurrentView => Volatile.Read(ref _view);

    /// <summary>Raised (outside any lock) with the previous and the new view whenever a refresh changes it.</summary>
    public event Action<ClusterView, ClusterView>? ViewChanged;

    /// <summary>Completes when this silo's view shows <paramref name="silo"/> with <paramref name="status"/>.</summary>
    public Task WaitForStatusAsync(SiloAddress silo, SiloStatus status, CancellationToken cancellationToken)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check(ClusterView _, ClusterView view)
        {
            if (view.GetStatus(silo) == status)
            {
                reached.TrySetResult();
            }
        }

        ViewChanged += Check;
        Check(ClusterView.Empty, CurrentView);
        var registration = cancellationToken.Register(() => reached.TrySetCanceled(cancellationToken));
        return reached.Task.ContinueWith(
            task =>
            {
                ViewChanged -= Check;
                registration.Dispose();
                return task;
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default).Unwrap();
    }

    public async Task RefreshAsync()
    {
        await _refreshGate.WaitAsync().ConfigureAwait(false);
        ClusterView previous, next;
        try
        {
            var data = await _table.ReadAll().ConfigureAwait(false);
            previous = _view;
            next = new ClusterView(data.Members.ToDictionary(m => m.Entry.Silo, m => m.Entry), data.Version.Version);
            if (next.Version == previous.Version && next.Members.Count == previous.Members.Count)
            {
                return;
            }

            Volatile.Write(ref _view, next);
        }
        finally
        {
            _refreshGate.Release();
        }

        foreach (var (silo, entry) in next.Members)
        {
            if (previous.GetStatus(silo) != entry.Status)
            {
                LogStatusChange(_logger, silo, previous.GetStatus(silo), entry.Status);
            }
        }

        ViewChanged?.Invoke(previous, next);
    }

    /// <summary>Writes <paramref name="entry"/> (inserting it if absent), retrying on concurrent writes.</summary>
    public async Task WriteEntryAsync(MembershipEntry entry)
    {
        for (var attempt = 0; attempt < MaxWriteAttempts; attempt++)
        {
            var data = await _table.ReadAll().ConfigureAwait(false);
            var existing = data.Members.FirstOrDefault(m => m.Entry.Silo.Equals(entry.Silo));
            var written = existing.Entry is null
                ? await _table.InsertRow(entry, data.Version.Next()).ConfigureAwait(false)
                : await _table.UpdateRow(entry with { SuspectTimes = existing.Entry.SuspectTimes }, existing.Etag, data.Version.Next()).ConfigureAwait(false);
            if (written)
            {
                await RefreshAsync().ConfigureAwait(false);
                return;
            }
        }

        throw new InvalidOperationException($"Could not write the membership row of {entry.Silo}: the table kept changing under {MaxWriteAttempts} attempts.");
    }

    /// <summary>Marks another silo dead (the failure detector's verdict, or a test killing a silo).</summary>
    public async Task DeclareDeadAsync(SiloAddress silo)
    {
        for (var attempt = 0; attempt < MaxWriteAttempts; attempt++)
        {
            var data = await _table.ReadAll().ConfigureAwait(false);
            var existing = data.Members.FirstOrDefault(m => m.Entry.Silo.Equals(silo));
            if (existing.Entry is null || existing.Entry.Status == SiloStatus.Dead)
            {
                await RefreshAsync().ConfigureAwait(false);
                return;
            }

            if (await _table.UpdateRow(existing.Entry with { Status = SiloStatus.Dead }, existing.Etag, data.Version.Next()).ConfigureAwait(false))
            {
                await RefreshAsync().ConfigureAwait(false);
                return;
            }
        }

        throw new InvalidOperationException($"Could not declare {silo} dead: the membership table kept changing.");
    }

    /// <summary>
    /// Records <paramref name="voter"/>'s suspicion of <paramref name="target"/>; declares it dead when enough
    /// distinct, recent votes are in. Returns true when the target is (now) dead.
    /// </summary>
    public async Task<bool> SuspectAsync(SiloAddress target, SiloAddress voter, int votesNeeded, TimeSpan voteExpiration)
    {
        for (var attempt = 0; attempt < MaxWriteAttempts; attempt++)
        {
            var data = await _table.ReadAll().ConfigureAwait(false);
            var existing = data.Members.FirstOrDefault(m => m.Entry.Silo.Equals(target));
            if (existing.Entry is null || existing.Entry.Status == SiloStatus.Dead)
            {
                await RefreshAsync().ConfigureAwait(false);
                return true;
            }

            var now = DateTime.UtcNow;
            var votes = existing.Entry.SuspectTimes
                .Where(v => !v.Voter.Equals(voter) && now - v.TimeUtc < voteExpiration)
                .Append(new SuspectVote(voter, now))
                .ToList();
            var dead = votes.Select(v => v.Voter).Distinct().Count() >= votesNeeded;
            var updated = existing.Entry with { SuspectTimes = votes, Status = dead ? SiloStatus.Dead : existing.Entry.Status };
            if (await _table.UpdateRow(updated, existing.Etag, data.Version.Next()).ConfigureAwait(false))
            {
                LogVote(_logger, voter, target, votes.Count, votesNeeded, dead);
                await RefreshAsync().ConfigureAwait(false);
                return dead;
            }
        }

        return false;
    }

    /// <summary>Writes this silo's IAmAlive time.</summary>
    public Task UpdateIAmAliveAsync(MembershipEntry self) => _table.UpdateIAmAlive(self with { IAmAliveTime = DateTime.UtcNow });

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "{Voter} suspects {Target}: {Votes} of {Needed} votes{Outcome}")]
    private static partial void LogVoteCore(ILogger logger, SiloAddress voter, SiloAddress target, int votes, int needed, string outcome);

    private static void LogVote(ILogger logger, SiloAddress voter, SiloAddress target, int votes, int needed, bool dead) =>
        LogVoteCore(logger, voter, target, votes, needed, dead ? ", declared dead" : "");

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Silo {Silo}: {Previous} -> {Current}")]
    private static partial void LogStatusChange(ILogger logger, SiloAddress silo, SiloStatus previous, SiloStatus current);
}
