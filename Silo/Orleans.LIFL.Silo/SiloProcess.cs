using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Orleans.LIFL.Dataplane;

namespace Orleans.LIFL.Silo;

/// <summary>How to start a <c>lifl silo</c> process.</summary>
public sealed record SiloProcessOptions
{
    /// <summary>The lifl program (lifl.dll); see <see cref="SiloProcess.LocateLiflProgram"/>.</summary>
    public required string LiflProgram { get; init; }

    public required string Secret { get; init; }

    public string? PostgresConnectionString { get; init; }

    public string ClusterId { get; init; } = "dev";

    public string? Name { get; init; }

    /// <summary>Further arguments (for example --grains PATH).</summary>
    public IReadOnlyList<string> ExtraArguments { get; init; } = [];

    /// <summary>Further environment variables (for example a setting as Lifl__Dataplane__PoolName).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Whether the silo stops once this process is gone (--exit-with-launcher; the default, for tests and benchmarks).</summary>
    public bool ExitWithLauncher { get; init; } = true;
}

/// <summary>
/// A silo running as its own process (<c>dotnet lifl.dll silo</c>) on free ports, for tests and benchmarks: it is
/// ready when it prints its ready line, and can be stopped gracefully, killed (SIGKILL), frozen (SIGSTOP) and
/// resumed (SIGCONT) like a real server.
/// </summary>
public sealed partial class SiloProcess : IAsyncDisposable
{
    private const int SigInt = 2;
    private const int SigTerm = 15;
    private const int SigStop = 19;
    private const int SigCont = 18;
    private const int KeptLines = 400;
    private readonly Process _process;
    private readonly Queue<string> _output = new();
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private SiloProcess(Process process)
    {
        _process = process;
    }

    public int ProcessId => _process.Id;

    /// <summary>The silo's address, as "ip:port@generation".</summary>
    public string SiloAddress { get; private set; } = "";

    /// <summary>The silo's gateway endpoint, as "ip:port".</summary>
    public string Gateway { get; private set; } = "";

    /// <summary>The node's shared pool the silo maps (null when it has none).</summary>
    public string? PoolName { get; private set; }

    /// <summary>The dashboard it serves (started with <c>--dashboard true</c>), from its ready line.</summary>
    public Uri? Dashboard { get; private set; }

    public bool HasExited => _process.HasExited;

    /// <summary>
    /// Closes this process's end of the silo's standard input, as this process's end would, however it ended: the silo
    /// (started with --exit-with-launcher) then stops. For testing that.
    /// </summary>
    public void CloseLauncherPipe() => _process.StandardInput.Close();

    public Task Exited => _process.WaitForExitAsync();

    public int ExitCode => _process.ExitCode;

    /// <summary>The last lines the process printed (for failure messages).</summary>
    public string RecentOutput
    {
        get
        {
            lock (_lock)
            {
                return string.Join(Environment.NewLine, _output);
            }
        }
    }

    public static async Task<SiloProcess> StartAsync(SiloProcessOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        // Standard input is a pipe this process holds open and never writes to: when it ends, however it ends, the silo
        // reads the end of it and stops (--exit-with-launcher) instead of living on as an orphan.
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { options.LiflProgram, "silo", "--silo-port", "0", "--gateway-port", "0", "--cluster-id", options.ClusterId, "--exit-with-launcher", options.ExitWithLauncher ? "true" : "false" })
        {
            start.ArgumentList.Add(argument);
        }

        if (options.Name is { } name)
        {
            start.ArgumentList.Add("--name");
            start.ArgumentList.Add(name);
        }

        foreach (var argument in options.ExtraArguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (variable, value) in options.Environment)
        {
            start.Environment[variable] = value;
        }

        // Secrets and connection strings go through the environment, not the (world-readable) command line.
        start.Environment["LIFL_SECRET"] = options.Secret;
        if (options.PostgresConnectionString is { } postgres)
        {
            start.Environment["LIFL_POSTGRES"] = postgres;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the lifl program.");
        var silo = new SiloProcess(process);
        process.OutputDataReceived += (_, e) => silo.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => silo.OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var exited = process.WaitForExitAsync(cancellationToken);
        var ready = silo._ready.Task.WaitAsync(options.ReadyTimeout, cancellationToken);
        if (await Task.WhenAny(ready, exited) != ready || !ready.IsCompletedSuccessfully)
        {
            var why = process.HasExited ? $"exited with code {process.ExitCode}" : $"was not ready within {options.ReadyTimeout}";
            if (process.HasExited)
            {
                // Its last lines may still be on their way through the output readers: this waits for their end.
                process.WaitForExit();
            }

            await silo.DisposeAsync();
            throw new InvalidOperationException($"The silo process {why}. Its output:{Environment.NewLine}{silo.RecentOutput}");
        }

        var match = ReadyLine().Match(await ready);
        silo.SiloAddress = match.Groups["silo"].Value;
        silo.Gateway = match.Groups["gateway"].Value;
        silo.PoolName = match.Groups["pool"] is { Success: true, Value: not "none" } pool ? pool.Value : null;
        silo.Dashboard = match.Groups["dashboard"] is { Success: true } dashboard ? new Uri(dashboard.Value) : null;
        return silo;
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            _output.Enqueue(line);
            if (_output.Count > KeptLines)
            {
                _output.Dequeue();
            }
        }

        if (line.StartsWith(SiloSettings.ReadyMarker, StringComparison.Ordinal) && ReadyLine().IsMatch(line))
        {
            _ready.TrySetResult(line);
        }
    }

    /// <summary>Kills the process at once (SIGKILL): no shutdown code runs, its sockets are reset by the kernel.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }
    }

    /// <summary>Kills the process (SIGKILL) and waits until it is gone (reaped).</summary>
    public async Task KillAsync()
    {
        Kill();
        await _process.WaitForExitAsync();
    }

    /// <summary>Freezes the process (SIGSTOP): to the cluster it looks partitioned away.</summary>
    public void Freeze() => Signal(SigStop);

    /// <summary>Resumes a frozen process (SIGCONT).</summary>
    public void Resume() => Signal(SigCont);

    /// <summary>Interrupts the process (SIGINT), as Ctrl+C in an operator's terminal does.</summary>
    public void Interrupt() => Signal(SigInt);

    /// <summary>Asks the silo to stop gracefully (SIGTERM) and waits for it to exit.</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return;
        }

        Signal(SigTerm);
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            Kill();
            await _process.WaitForExitAsync();
        }
    }

    private void Signal(int signal)
    {
        if (!_process.HasExited && SendSignal(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"Could not send signal {signal} to process {_process.Id} (errno {Marshal.GetLastPInvokeError()}).");
        }
    }

    /// <summary>Finds lifl.dll: next to this assembly (when running inside the lifl program), else in the CLI's build output of this repository.</summary>
    public static string LocateLiflProgram()
    {
        var here = Path.Combine(AppContext.BaseDirectory, "lifl.dll");
        if (File.Exists(here))
        {
            return here;
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Orleans.LIFL.sln")))
            {
                continue;
            }

#if DEBUG
            string[] configurations = ["Debug", "Release"];
#else
            string[] configurations = ["Release", "Debug"];
#endif
            foreach (var configuration in configurations)
            {
                var candidate = Path.Combine(dir.FullName, "Client", "Orleans.LIFL.Cli", "bin", configuration, "net10.0", "lifl.dll");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new FileNotFoundException("lifl.dll was not found next to this program nor in Client/Orleans.LIFL.Cli/bin: build the Client/Orleans.LIFL.Cli project.");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                Resume();
            }
            catch (InvalidOperationException)
            {
            }

            Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();

        // A killed silo closes nothing: once no live process maps its pool, the pool goes (it held only its memory).
        if (PoolName is { } pool)
        {
            SharedBufferPool.RemoveIfUnused(pool);
        }
    }

    [GeneratedRegex(@"silo=(?<silo>\S+) gateway=(?<gateway>\S+)( cluster=\S+ pool=(?<pool>\S+))?( dashboard=(?<dashboard>\S+))?")]
    private static partial Regex ReadyLine();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
