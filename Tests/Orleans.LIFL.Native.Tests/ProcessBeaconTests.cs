using Orleans.LIFL.Dataplane;
using Xunit;

namespace Orleans.LIFL.Native.Tests;

/// <summary>
/// Process beacons: a watcher hears that a beacon's owner died (its holding thread ended without putting it out), and
/// not when the owner puts it out. (Native/tests/beacon_test.c kills a whole owner process with SIGKILL.)
/// </summary>
public sealed class ProcessBeaconTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly string _name = "t" + Guid.NewGuid().ToString("N")[..12];

    private string FilePath => Path.Combine("/dev/shm", "lifl.beacon." + _name);

    [Fact]
    public async Task A_beacon_put_out_ends_its_watch_without_a_death()
    {
        var beacon = ProcessBeacon.Light("/dev/shm", _name);
        Assert.True(File.Exists(FilePath));
        var died = 0;
        using var watch = BeaconWatch.Open("/dev/shm", _name, () => Interlocked.Increment(ref died));
        Assert.NotNull(watch);
        Assert.False(watch.Ended.IsCompleted);

        beacon.Dispose();
        Assert.Equal(BeaconState.Out, await watch.Ended.WaitAsync(Patience, TestContext.Current.CancellationToken));
        Assert.Equal(0, died);
        Assert.False(File.Exists(FilePath));
        Assert.Null(BeaconWatch.Open("/dev/shm", _name, () => { }));
    }

    [Fact]
    public async Task An_owner_gone_without_putting_it_out_is_heard_of_once_and_its_leftover_removed()
    {
        // The holding thread ends holding it, as every thread of a killed process does.
        var holder = new Thread(() => Assert.Equal(0, NativeMethods.BeaconLight("/dev/shm", _name, out _)));
        holder.Start();
        holder.Join();

        Assert.True(File.Exists(FilePath));
        var died = 0;
        using var watch = BeaconWatch.Open("/dev/shm", _name, () => Interlocked.Increment(ref died));
        Assert.NotNull(watch);
        Assert.Equal(BeaconState.Died, await watch.Ended.WaitAsync(Patience, TestContext.Current.CancellationToken));
        Assert.Equal(1, died);
        Assert.False(File.Exists(FilePath));
    }

    [Fact]
    public async Task A_disposed_watch_ends_while_the_owner_lives()
    {
        using var beacon = ProcessBeacon.Light("/dev/shm", _name);
        var watch = BeaconWatch.Open("/dev/shm", _name, () => { })!;
        watch.Dispose();
        Assert.Equal(BeaconState.Lit, await watch.Ended.WaitAsync(Patience, TestContext.Current.CancellationToken));
    }

    [Fact]
    public void Names_are_made_safe_and_bad_ones_refused()
    {
        Assert.Equal("127.0.0.1_11111_42", ProcessBeacon.NameOf("127.0.0.1:11111@42"));
        Assert.Equal("___1__11111_7", ProcessBeacon.NameOf("[::1]:11111@7"));
        Assert.Throws<ArgumentException>(() => ProcessBeacon.NameOf(new string('a', 101)));
        var error = Assert.Throws<DataplaneException>(() => ProcessBeacon.Light("/dev/shm", "a/b"));
        Assert.Contains("invalid argument", error.Message);
        Assert.Null(BeaconWatch.Open("/dev/shm", _name, () => { }));
        Assert.Null(BeaconWatch.Open("/no/such/directory", _name, () => { }));
    }
}
