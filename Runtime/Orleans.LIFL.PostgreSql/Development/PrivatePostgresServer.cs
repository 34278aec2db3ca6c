using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Orleans.LIFL.PostgreSql.Development;

/// <summary>
/// A throw-away PostgreSQL server for tests and benchmarks, as <c>./lifl test</c> starts one: a fresh data directory under the temporary
/// folder, listening on 127.0.0.1 only (no Unix socket) on a free port from 55432, trust authentication, durability
/// off (the data is deleted anyway). Never touches the system's own cluster or port 5432. PostgreSQL refuses to run
/// as root, so as root its programs run as the postgres user.
/// </summary>
public sealed class PrivatePostgresServer : IAsyncDisposable
{
    private const int FirstPort = 55432;
    private const int PortsToTry = 50;
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);

    public const string MissingMessage =
        "PostgreSQL is not installed: its server programs (initdb, pg_ctl) are neither in /usr/lib/postgresql/*/bin nor on PATH. "
        + "Run ./lifl test (it installs PostgreSQL and starts a private server for the run), or install it with: apt-get install postgresql";

    /// <summary>What the tests need of a server, appended to its postgresql.conf.</summary>
    private const string Settings = """

        # Orleans.LIFL test instance: loopback only, no Unix socket, no durability.
        listen_addresses = '127.0.0.1'
        unix_socket_directories = ''
        max_connections = 300
        fsync = off
        synchronous_commit = off
        full_page_writes = off
        """;

    private readonly string _binDirectory;
    private readonly string _root;
    private readonly string _dataDirectory;
    private readonly bool _asPostgresUser;
    private Process? _watchdog;

    private PrivatePostgresServer(string binDirectory, string root, bool asPostgresUser, int port)
    {
        _binDirectory = binDirectory;
        _root = root;
        _dataDirectory = Path.Combine(root, "data");
        _asPostgresUser = asPostgresUser;
        Port = port;
    }

    public int Port { get; }

    public string ConnectionString =>
        $"Host=127.0.0.1;Port={Port.ToString(CultureInfo.InvariantCulture)};Username=postgres;Database=postgres";

    public static async Task<PrivatePostgresServer> StartAsync()
    {
        var bin = FindBinDirectory() ?? throw new InvalidOperationException(MissingMessage);
        var asPostgresUser = Environment.UserName == "root";
        var root = Path.Combine(TempParent(asPostgresUser), "lifl-test-pg-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        try
        {
            if (asPostgresUser)
            {
                await RunAsync("chown", ["postgres:", root], asPostgresUser: false, "give the data directory to the postgres user");
            }

            var data = Path.Combine(root, "data");
            await RunAsync(Path.Combine(bin, "initdb"),
                ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"],
                asPostgresUser, "initdb");
            await File.AppendAllTextAsync(Path.Combine(data, "postgresql.conf"), Settings);

            var log = Path.Combine(root, "server.log");
            for (var port = FirstPort; port < FirstPort + PortsToTry; port++)
            {
                if (!IsPortFree(port))
                {
                    continue;
                }

                var instance = new PrivatePostgresServer(bin, root, asPostgresUser, port);
                var (exitCode, output) = await TryRunAsync(Path.Combine(bin, "pg_ctl"),
                    ["-D", data, "-l", log, "-w", "-t", "60", "-o", "-p " + port.ToString(CultureInfo.InvariantCulture), "start"],
                    asPostgresUser);
                if (exitCode == 0)
                {
                    instance._watchdog = StartWatchdog(bin, root, data, asPostgresUser);
                    return instance;
                }

                var serverLog = File.Exists(log) ? await File.ReadAllTextAsync(log) : "";
                if (!serverLog.Contains("could not bind", StringComparison.OrdinalIgnoreCase))
                {
                    throw new InvalidOperationException($"pg_ctl could not start the test PostgreSQL server on port {port} (exit code {exitCode}): {output}\n{serverLog}");
                }

                // Someone took the port between the check and the start: the next one.
                File.Delete(log);
            }

            throw new InvalidOperationException($"No free port for the test PostgreSQL server in {FirstPort}-{FirstPort + PortsToTry - 1}.");
        }
        catch
        {
            TryDelete(root);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The server is stopped here: its watchdog is not needed.
        if (_watchdog is { HasExited: false } watchdog)
        {
            watchdog.Kill();
        }

        _watchdog?.Dispose();

        // Immediate: the data is thrown away, so there is nothing to flush.
        await TryRunAsync(Path.Combine(_binDirectory, "pg_ctl"), ["-D", _dataDirectory, "-m", "immediate", "-w", "stop"], _asPostgresUser);
        TryDelete(_root);
    }

    /// <summary>
    /// The launcher is gone (for tests): closes this process's end of the watchdog's pipe, as the operating system does
    /// when the launcher dies; returns the watchdog, which then stops the server and deletes its directory.
    /// </summary>
    internal Process? AbandonForTest()
    {
        _watchdog?.StandardInput.Close();
        return _watchdog;
    }

    /// <summary>
    /// A shell that waits for the end of its standard input — a pipe this process holds open and never writes to — and
    /// then stops the server and deletes its directory: the operating system closes the pipe when this process ends,
    /// however it ends (a crash, SIGKILL, a CI timeout), so a test or benchmark killed half way leaves no server behind.
    /// It ignores the terminal's interrupt, which reaches it with its launcher.
    /// </summary>
    private static Process StartWatchdog(string bin, string root, string data, bool asPostgresUser)
    {
        var start = new ProcessStartInfo("sh")
        {
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = TempParent(asPostgresUser),
        };
        foreach (var argument in new[] { "-c", "trap '' INT TERM HUP; cat > /dev/null; root=$1; shift; \"$@\" > /dev/null 2>&1; rm -rf -- \"$root\"", "lifl-pg-watchdog", root }
            .Concat(CommandLine(Path.Combine(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"], asPostgresUser)))
        {
            start.ArgumentList.Add(argument);
        }

        return Process.Start(start) ?? throw new InvalidOperationException("Could not start the test PostgreSQL server's watchdog (sh).");
    }

    /// <summary>Debian's layout (/usr/lib/postgresql/VERSION/bin, newest first), else PATH.</summary>
    private static string? FindBinDirectory()
    {
        const string debian = "/usr/lib/postgresql";
        if (Directory.Exists(debian))
        {
            var newest = Directory.GetDirectories(debian)
                .Select(dir => (Dir: Path.Combine(dir, "bin"), Version: int.TryParse(Path.GetFileName(dir), out var v) ? v : -1))
                .Where(c => HasServerPrograms(c.Dir))
                .OrderByDescending(c => c.Version)
                .Select(c => c.Dir)
                .FirstOrDefault();
            if (newest is not null)
            {
                return newest;
            }
        }

        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault(HasServerPrograms);
    }

    private static bool HasServerPrograms(string directory) =>
        ProgramExists(Path.Combine(directory, "initdb")) && ProgramExists(Path.Combine(directory, "pg_ctl"));

    /// <summary>True for a file, or a link that leads to one (a link left behind by an uninstalled package does not count).</summary>
    private static bool ProgramExists(string path)
    {
        var file = new FileInfo(path);
        return file.LinkTarget is null ? file.Exists : file.ResolveLinkTarget(returnFinalTarget: true)?.Exists == true;
    }

    /// <summary>Where the data directory goes: the postgres user can always reach /tmp, not always root's TMPDIR.</summary>
    private static string TempParent(bool asPostgresUser) => asPostgresUser ? "/tmp" : Path.GetTempPath();

    private static bool IsPortFree(int port)
    {
        try
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static async Task RunAsync(string program, string[] arguments, bool asPostgresUser, string what)
    {
        var (exitCode, output) = await TryRunAsync(program, arguments, asPostgresUser);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"Starting the test PostgreSQL server failed: {what} exited with code {exitCode}: {output}");
        }
    }

    private static async Task<(int ExitCode, string Output)> TryRunAsync(string program, string[] arguments, bool asPostgresUser)
    {
        var command = CommandLine(program, arguments, asPostgresUser);
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // The postgres user may not enter the current directory (root's home, for one).
            WorkingDirectory = TempParent(asPostgresUser),
        };
        foreach (var argument in command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}.");
        var output = new StringBuilder();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"{program} did not finish within {CommandTimeout.TotalSeconds} s");
        }

        output.Append(await stdout).Append(await stderr);
        return (process.ExitCode, output.ToString().Trim());
    }

    /// <summary>The program and its arguments, run as the postgres user (through runuser) when asked.</summary>
    private static string[] CommandLine(string program, string[] arguments, bool asPostgresUser) =>
        asPostgresUser ? ["runuser", "-u", "postgres", "--", program, .. arguments] : [program, .. arguments];

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
