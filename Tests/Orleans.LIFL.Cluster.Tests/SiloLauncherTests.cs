using System.Diagnostics;
using Orleans.LIFL.Silo;
using Xunit;

namespace Orleans.LIFL.Cluster.Tests;

/// <summary>Silo processes started by tests and benchmarks do not outlive the process that started them.</summary>
public sealed class SiloLauncherTests
{
    /// <summary>
    /// A silo started with --exit-with-launcher stops once its standard input closes, which the operating system does
    /// when the launcher ends however it ends (here the launcher's end of the pipe is closed as its death would).
    /// </summary>
    [Fact]
    public async Task A_silo_stops_once_its_launcher_is_gone()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { SiloProcess.LocateLiflProgram(), "silo", "--silo-port", "0", "--gateway-port", "-1", "--cluster-id", "launcher-test", "--exit-with-launcher", "true" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["LIFL_SECRET"] = "launcher-test-secret-0123456789";
        using var silo = Process.Start(start)!;
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        silo.OutputDataReceived += (_, e) =>
        {
            if (e.Data is { } line)
            {
                output.Enqueue(line);
                if (line.StartsWith(SiloSettings.ReadyMarker, StringComparison.Ordinal))
                {
                    ready.TrySetResult();
                }
            }
        };
        silo.ErrorDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        silo.BeginOutputReadLine();
        silo.BeginErrorReadLine();
        try
        {
            await Task.WhenAny(ready.Task, silo.WaitForExitAsync(cancellationToken)).WaitAsync(TimeSpan.FromSeconds(60), cancellationToken);
            Assert.True(ready.Task.IsCompleted, $"the silo did not start:{Environment.NewLine}{string.Join(Environment.NewLine, output)}");
            Assert.False(silo.HasExited);

            silo.StandardInput.Close();
            await silo.WaitForExitAsync(cancellationToken).WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
            Assert.Equal(0, silo.ExitCode);
            Assert.Contains(output, line => line.Contains("the process that launched it is gone", StringComparison.Ordinal));
        }
        finally
        {
            if (!silo.HasExited)
            {
                silo.Kill(entireProcessTree: true);
            }
        }
    }
}
