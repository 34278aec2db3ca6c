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

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Silo {Silo}: {Previous} -> {Current}")]
    private static partial void LogStatusChange(ILogger logger, SiloAddress silo, SiloStatus previous, SiloStatus current);
}
