namespace Orleans.LIFL.Runtime.MembershipService;

/// <summary>The embedded default: a membership table shared by the silos of one process.</summary>
internal sealed class InMemoryMembershipTable : IMembershipTable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<SiloAddress, (MembershipEntry Entry, int Etag)> _rows = [];
    private TableVersion _version = new(0, "0");

    /// <summary>Raised after every change, so silos in the process refresh their view at once.</summary>
    public event Action? Changed;

    public Task InitializeMembershipTable(bool tryInitTableVersion) => Task.CompletedTask;

    public Task<MembershipTableData> ReadAll()
    {
        lock (_lock)
        {
            var members = _rows.Values.Select(r => (r.Entry, r.Etag.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToList();
            return Task.FromResult(new MembershipTableData(members, _version));
        }
    }

    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion)
    {
        lock (_lock)
        {
            if (_rows.ContainsKey(entry.Silo) || tableVersion.Version != _version.Version + 1)
            {
                return Task.FromResult(false);
            }

            _rows[entry.Silo] = (entry, 0);
            _version = NextVersion(tableVersion);
        }

        Changed?.Invoke();
        return Task.FromResult(true);
    }

    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion)
    {
        lock (_lock)
        {
            if (!_rows.TryGetValue(entry.Silo, out var row)
                || row.Etag.ToString(System.Globalization.CultureInfo.InvariantCulture) != etag
                || tableVersion.Version != _version.Version + 1)
            {
                return Task.FromResult(false);
            }

            _rows[entry.Silo] = (entry, row.Etag + 1);
            _version = NextVersion(tableVersion);
        }

        Changed?.Invoke();
        return Task.FromResult(true);
    }

    public Task UpdateIAmAlive(MembershipEntry entry)
    {
        lock (_lock)
        {
            if (_rows.TryGetValue(entry.Silo, out var row))
            {
                _rows[entry.Silo] = (row.Entry with { IAmAliveTime = entry.IAmAliveTime }, row.Etag);
            }
        }

        return Task.CompletedTask;
    }

    private static TableVersion NextVersion(TableVersion written) =>
        new(written.Version, written.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
