namespace Orleans.LIFL.Runtime.MembershipService;

/// <summary>A silo's life cycle, with the status codes of the Orleans membership table.</summary>
public enum SiloStatus
{
    None = 0,
    Created = 1,
    Joining = 2,
    Active = 3,
    ShuttingDown = 4,
    Stopping = 5,
    Dead = 6,
}

/// <summary>One row of the membership table.</summary>
public sealed record MembershipEntry
{
    public required SiloAddress Silo { get; init; }

    public required SiloStatus Status { get; init; }

    public required string SiloName { get; init; }

    public required string HostName { get; init; }

    /// <summary>The port clients connect to (0 when the silo is not a gateway).</summary>
    public int ProxyPort { get; init; }

    public required DateTime StartTime { get; init; }

    public required DateTime IAmAliveTime { get; init; }

    /// <summary>Suspicion votes: who suspected this silo and when.</summary>
    public IReadOnlyList<SuspectVote> SuspectTimes { get; init; } = [];
}

public sealed record SuspectVote(SiloAddress Voter, DateTime TimeUtc);

/// <summary>The table's version row, updated with every change so concurrent writers cannot both succeed.</summary>
public sealed record TableVersion(int Version, string VersionEtag)
{
    public TableVersion Next() => this with { Version = Version + 1 };
}

public sealed record MembershipTableData(IReadOnlyList<(MembershipEntry Entry, string Etag)> Members, TableVersion Version);

/// <summary>The membership table, with the operations of Orleans' IMembershipTable.</summary>
public interface IMembershipTable
{
    Task InitializeMembershipTable(bool tryInitTableVersion);

    Task<MembershipTableData> ReadAll();

    /// <summary>Inserts a row if the silo is absent and the table version is the expected next one.</summary>
    Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion);

    /// <summary>Replaces a row if its etag and the table version match.</summary>
    Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion);

    Task UpdateIAmAlive(MembershipEntry entry);
}

/// <summary>An immutable picture of the cluster as one silo last saw it.</summary>
public sealed class ClusterView
{
    public static readonly ClusterView Empty = new(new Dictionary<SiloAddress, MembershipEntry>(), 0);

    public ClusterView(IReadOnlyDictionary<SiloAddress, MembershipEntry> members, int version)
    {
        Members = members;
        Version = version;
        ActiveSilos = members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.Silo).OrderBy(s => s).ToArray();
    }

    public IReadOnlyDictionary<SiloAddress, MembershipEntry> Members { get; }

    public int Version { get; }

    /// <summary>Active silos, sorted.</summary>
    public IReadOnlyList<SiloAddress> ActiveSilos { get; }

    public SiloStatus GetStatus(SiloAddress silo) => Members.TryGetValue(silo, out var entry) ? entry.Status : SiloStatus.None;

    public bool IsActive(SiloAddress silo) => GetStatus(silo) == SiloStatus.Active;

    /// <summary>True when the silo is known to be gone (dead, or superseded by a newer generation on its endpoint).</summary>
    public bool IsDeadOrSuperseded(SiloAddress silo)
    {
        var status = GetStatus(silo);
        if (status == SiloStatus.Dead)
        {
            return true;
        }

        return Members.Keys.Any(other => other.IsSameEndpoint(silo) && other.Generation > silo.Generation);
    }
}
