using Microsoft.Extensions.Logging.Abstractions;
using Orleans.LIFL.Runtime.MembershipService;
using Xunit;

namespace Orleans.LIFL.Runtime.Tests;

public sealed class MembershipRefreshTests
{
    /// <summary>
    /// Callers content with a view of a given age share the last read (requests that found a dead silo unreachable do
    /// not each read the table); a stricter age, or a plain refresh, reads again.
    /// </summary>
    [Fact]
    public async Task Callers_content_with_a_recent_view_share_the_last_read()
    {
        var table = new CountingMembershipTable(new InMemoryMembershipTable());
        var membership = new MembershipTableManager(table, NullLogger<MembershipTableManager>.Instance);

        await membership.RefreshAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(1, table.Reads);

        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => membership.RefreshAsync(TimeSpan.FromMinutes(1))));
        Assert.Equal(1, table.Reads);

        await membership.RefreshAsync(TimeSpan.Zero);
        Assert.Equal(2, table.Reads);
        await membership.RefreshAsync();
        Assert.Equal(3, table.Reads);
    }

    private sealed class CountingMembershipTable(IMembershipTable inner) : IMembershipTable
    {
        private int _reads;

        public int Reads => Volatile.Read(ref _reads);

        public Task InitializeMembershipTable(bool tryInitTableVersion) => inner.InitializeMembershipTable(tryInitTableVersion);

        public Task<MembershipTableData> ReadAll()
        {
            Interlocked.Increment(ref _reads);
            return inner.ReadAll();
        }

        public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion) => inner.InsertRow(entry, tableVersion);

        public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion) => inner.UpdateRow(entry, etag, tableVersion);

        public Task UpdateIAmAlive(MembershipEntry entry) => inner.UpdateIAmAlive(entry);
    }
}
