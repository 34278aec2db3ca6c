using System.Diagnostics;
using Orleans.LIFL.Dataplane;
using Xunit;

namespace Orleans.LIFL.Native.Tests;

/// <summary>The node's places: a counting semaphore across processes, held with flocks the kernel drops for the dead.</summary>
public sealed class NodePlacesTests
{
    private readonly string _name = "t" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Two holders of the same places (as two silos are) share them: a taken place is free again once given back.</summary>
    [Fact]
    public void Holders_of_the_same_places_share_them()
    {
        using var first = new NodePlaces(_name, 2);
        using var second = new NodePlaces(_name, 2);
        Assert.Equal(0, first.TryTake());
        Assert.Equal(1, second.TryTake());
        Assert.Equal((-1, -1), (first.TryTake(), second.TryTake()));

        first.Give(0);
        Assert.Equal((0, 2, 0), (second.TryTake(), second.Held, first.Held));
        Assert.Throws<ArgumentOutOfRangeException>(() => first.Give(0));
    }

    /// <summary>A holder asking for fewer places uses the first of them; closing a holder gives its places back.</summary>
    [Fact]
    public void Fewer_places_are_the_first_ones_and_a_closed_holder_gives_its_back()
    {
        var wide = new NodePlaces(_name, 3);
        using var narrow = new NodePlaces(_name, 1);
        Assert.Equal(0, wide.TryTake());
        Assert.Equal(-1, narrow.TryTake());
        Assert.Equal(1, wide.TryTake());

        wide.Dispose();
        Assert.Equal(0, narrow.TryTake());
    }

    /// <summary>A place held by a process killed with SIGKILL is free at once: the kernel drops a dead process's flock.</summary>
    [Fact]
    public async Task A_killed_processes_place_is_free_again()
    {
        using var places = new NodePlaces(_name, 1);
        // One process holds the lock (the shell opens the file, flock(1) locks it and exits, the shell becomes sleep): once
        // it is reaped its files are closed. With `flock -c` the lock was also held by flock's child, which could outlive
        // the wait for flock itself on a busy machine.
        using var holder = Process.Start(new ProcessStartInfo("sh", ["-c", $"exec 9>/dev/shm/lifl.{_name}.place.0 && flock -x 9 && echo locked && exec sleep 60"])
        {
            RedirectStandardOutput = true,
        })!;
        try
        {
            Assert.Equal("locked", await holder.StandardOutput.ReadLineAsync(TestContext.Current.CancellationToken));
            Assert.Equal(-1, places.TryTake());
        }
        finally
        {
            holder.Kill();
            await holder.WaitForExitAsync(TestContext.Current.CancellationToken);
        }

        Assert.Equal(0, places.TryTake());
    }

    /// <summary>Orphaned place files nobody holds are removed; held ones and those of live owners stay.</summary>
    [Fact]
    public void Orphaned_places_nobody_holds_are_removed()
    {
        var orphan = _name + "-gone";
        var live = _name + "-live";
        using (var left = new NodePlaces(orphan, 2))
        {
            Assert.Equal(0, left.TryTake());
            Assert.Equal(1, NodePlaces.RemoveOrphans(name => name == orphan)); // the free one; the held one stays
            Assert.Equal((true, false), (File.Exists($"/dev/shm/lifl.{orphan}.place.0"), File.Exists($"/dev/shm/lifl.{orphan}.place.1")));
        }

        File.WriteAllText($"/dev/shm/lifl.{orphan}.place.0", "");
        using var held = new NodePlaces(live, 1);
        Assert.Equal(0, held.TryTake());
        Assert.Equal(1, NodePlaces.RemoveOrphans(name => name == orphan || name == live));
        Assert.False(File.Exists($"/dev/shm/lifl.{orphan}.place.0"));
        Assert.True(File.Exists($"/dev/shm/lifl.{live}.place.0"));
    }

    /// <summary>The last holder to close removes the files; one that cannot create them says where and why.</summary>
    [Fact]
    public void The_files_go_with_the_last_holder_and_a_bad_directory_is_named()
    {
        var first = new NodePlaces(_name, 1);
        var second = new NodePlaces(_name, 1);
        Assert.Equal(0, second.TryTake());
        first.Dispose();
        Assert.True(File.Exists($"/dev/shm/lifl.{_name}.place.0"));
        second.Dispose();
        Assert.False(File.Exists($"/dev/shm/lifl.{_name}.place.0"));

        var error = Assert.Throws<DataplaneException>(() => new NodePlaces(_name, 1, "/nonexistent-lifl-directory"));
        Assert.Contains("/nonexistent-lifl-directory/lifl." + _name + ".place.0", error.Message, StringComparison.Ordinal);
        Assert.Contains("No such file or directory", error.Message, StringComparison.Ordinal);
    }
}
