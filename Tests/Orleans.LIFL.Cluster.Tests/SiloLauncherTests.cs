using Orleans.LIFL.Silo;
using Xunit;

namespace Orleans.LIFL.Cluster.Tests;

/// <summary>Silo processes started by tests and benchmarks do not outlive the process that started them.</summary>
public sealed class SiloLauncherTests
{
    /// <summary>
    /// A silo started with --exit-with-launcher (as <see cref="SiloProcess"/> starts them) stops once its standard input
    /// closes, which the operating system does when the launcher ends however it ends (here the launcher's end of the
    /// pipe is closed as its death would).
    /// </summary>
    [Fact]
    public async Task A_silo_stops_once_its_launcher_is_gone()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var silo = await SiloProcess.StartAsync(
            new SiloProcessOptions { LiflProgram = SiloProcess.LocateLiflProgram(), Secret = "launcher-test-secret-0123456789", ClusterId = "launcher-test" },
            cancellationToken);
        Assert.False(silo.HasExited);

        silo.CloseLauncherPipe();
        await silo.Exited.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        Assert.Equal(0, silo.ExitCode);
        Assert.Contains("the process that launched it is gone", silo.RecentOutput, StringComparison.Ordinal);
    }

    /// <summary>
    /// A silo not told to watch its launcher (an operator's) that is interrupted (Ctrl+C) stops cleanly and does not
    /// claim its launcher is gone.
    /// </summary>
    [Fact]
    public async Task An_interrupted_silo_without_the_launcher_watch_does_not_blame_its_launcher()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        await using var silo = await SiloProcess.StartAsync(
            new SiloProcessOptions
            {
                LiflProgram = SiloProcess.LocateLiflProgram(),
                Secret = "launcher-test-secret-0123456789",
                ClusterId = "launcher-test",
                ExitWithLauncher = false,
            },
            cancellationToken);

        silo.Interrupt();
        await silo.Exited.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        Assert.Equal(0, silo.ExitCode);
        Assert.DoesNotContain("the process that launched it is gone", silo.RecentOutput, StringComparison.Ordinal);
    }
}
