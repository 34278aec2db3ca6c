using System.Reflection;
using System.Runtime.Loader;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Hosting;

namespace Orleans.LIFL.Silo;

/// <summary>
/// A cluster silo process: TCP endpoints, membership and directory in PostgreSQL, grain state in PostgreSQL
/// ("Default" storage) and large payloads beside it, memory streams. It exits when the host is stopped (Ctrl-C, SIGTERM) or when the cluster
/// declares it dead.
/// </summary>
public static partial class SiloProgram
{
    public const int ExitDeclaredDead = 3;

    /// <param name="args">--cluster-id, --service-id, --secret, --postgres, --listen, --advertise, --silo-port,
    /// --gateway-port, --name, --config FILE, --grains ASSEMBLY.dll (repeatable).</param>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter output, CancellationToken cancellationToken)
    {
        var (settings, configFiles, grainAssemblies) = ParseArguments(args);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, ContentRootPath = Directory.GetCurrentDirectory() });
        builder.Configuration.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true);
        builder.Configuration.AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json"), optional: true);
        foreach (var file in configFiles)
        {
            builder.Configuration.AddJsonFile(Path.GetFullPath(file), optional: false);
        }

        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddInMemoryCollection(SiloSettings.EnvironmentKeys
            .Select(e => (e.Value, Value: Environment.GetEnvironmentVariable(e.Key)))
            .Where(e => e.Value is not null)
            .Select(e => new KeyValuePair<string, string?>(e.Item1, e.Value)));
        builder.Configuration.AddInMemoryCollection(settings);

        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
        builder.Logging.SetMinimumLevel(LogLevel.Information);

        var postgres = builder.Configuration["Lifl:PostgreSql:ConnectionString"];
        var storage = builder.Configuration["Lifl:Silo:Storage"] ?? (string.IsNullOrWhiteSpace(postgres) ? "memory" : "postgres");
        if (storage is not ("memory" or "postgres"))
        {
            throw new InvalidOperationException($"Lifl:Silo:Storage (--storage) is '{storage}': it must be memory or postgres.");
        }

        if (storage == "postgres" && string.IsNullOrWhiteSpace(postgres))
        {
            throw new InvalidOperationException("Lifl:Silo:Storage (--storage) is postgres, but no Lifl:PostgreSql:ConnectionString (--postgres, LIFL_POSTGRES) is set.");
        }
        var dashboard = builder.Configuration.GetValue<bool>("Lifl:Dashboard:Enabled");
        builder.UseLiflSilo(silo =>
        {
            silo.Services.Configure<EndpointOptions>(o => o.Enabled = true);
            foreach (var assembly in grainAssemblies)
            {
                silo.AddApplicationPart(assembly);
            }

            if (!string.IsNullOrWhiteSpace(postgres))
            {
                silo.UsePostgreSqlClustering();
            }

            if (storage == "postgres")
            {
                silo.AddPostgreSqlGrainStorage("Default");
                silo.AddPostgreSqlGrainStorage("PubSubStore");
                silo.AddPostgreSqlBlobStorage();
            }
            else
            {
                // In this process only: what a silo stores goes with it (for trials and benchmarks, not for resuming).
                silo.AddMemoryGrainStorageAsDefault();
                silo.AddMemoryGrainStorage("PubSubStore");
            }

            silo.AddMemoryStreams("Default");
            silo.Services.AddSingleton<Grains.Demo.DemoJournal>();
            if (dashboard)
            {
                silo.AddLiflDashboard();
            }
        });

        using var host = builder.Build();
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Orleans.LIFL.Silo");
        if (string.IsNullOrWhiteSpace(postgres))
        {
            LogNoDatabase(logger);
        }

        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        var silo = host.Services.GetRequiredService<Runtime.ILocalSiloDetails>();
        var cluster = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ClusterOptions>>().Value;
        var dataplane = host.Services.GetRequiredService<Runtime.Dataplane.INodeDataplane>();
        var dashboardAddress = dashboard ? host.Services.GetRequiredService<Dashboard.DashboardServer>().Address?.ToString() : null;
        await output.WriteLineAsync(
            $"{SiloSettings.ReadyMarker} silo={silo.SiloAddress} gateway={silo.GatewayAddress?.ToString() ?? "none"} cluster={cluster.ClusterId} pool={(dataplane.Pool is null ? "none" : dataplane.PoolName)}"
            + (dashboardAddress is null ? "" : $" dashboard={dashboardAddress}"))
            .ConfigureAwait(false);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);

        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        var stopping = Task.Delay(Timeout.Infinite, lifetime.ApplicationStopping);
        var cancelled = Task.Delay(Timeout.Infinite, cancellationToken);
        var launcherGone = builder.Configuration.GetValue<bool>("Lifl:Silo:ExitWithLauncher")
            ? LauncherGoneAsync(Console.OpenStandardInput())
            : Task.Delay(Timeout.Infinite, CancellationToken.None);
        var finished = await Task.WhenAny(silo.DeclaredDead, stopping, cancelled, launcherGone).ConfigureAwait(false);
        if (finished == silo.DeclaredDead)
        {
            await output.WriteLineAsync($"silo {silo.SiloAddress} was declared dead by the cluster; exiting").ConfigureAwait(false);
            return ExitDeclaredDead;
        }

        if (finished == launcherGone)
        {
            LogLauncherGone(logger, silo.SiloAddress.ToString());
        }

        await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// Completes once standard input reaches its end: the launcher holds the pipe's other end open for as long as it
    /// runs, and the operating system closes it when the launcher ends in any way (a crash, SIGKILL, a CI timeout), so
    /// silos started by tests and benchmarks do not outlive them. What is written to the pipe is ignored. The read
    /// blocks (standard input has no asynchronous read), so it has a thread of its own rather than one of the pool's
    /// workers for the silo's whole life.
    /// </summary>
    private static Task LauncherGoneAsync(Stream input)
    {
        var gone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reader = new Thread(() =>
        {
            var buffer = new byte[256];
            try
            {
                while (input.Read(buffer) > 0)
                {
                }
            }
            catch (IOException)
            {
                // A broken pipe means the same.
            }

            gone.TrySetResult();
        })
        {
            IsBackground = true,
            Name = "lifl launcher watch",
        };
        reader.Start();
        return gone.Task;
    }

    private static (Dictionary<string, string?> Settings, List<string> ConfigFiles, List<Assembly> GrainAssemblies) ParseArguments(IReadOnlyList<string> args)
    {
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var configFiles = new List<string>();
        var assemblies = new List<Assembly>();
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            var value = i + 1 < args.Count ? args[i + 1] : throw new ArgumentException($"Option {name} needs a value.");
            i++;
            if (name == "--config")
            {
                configFiles.Add(value);
            }
            else if (name == "--grains")
            {
                var path = Path.GetFullPath(value);
                if (!File.Exists(path))
                {
                    throw new ArgumentException($"--grains {value}: no such assembly.");
                }

                assemblies.Add(AssemblyLoadContext.Default.LoadFromAssemblyPath(path));
            }
            else if (SiloSettings.CommandLineKeys.TryGetValue(name, out var key))
            {
                settings[key] = value;
            }
            else
            {
                throw new ArgumentException(
                    $"Unknown option {name}; known: {string.Join(", ", SiloSettings.CommandLineKeys.Keys.Append("--config").Append("--grains"))}.");
            }
        }

        return (settings, configFiles, assemblies);
    }

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Silo {Silo}: the process that launched it is gone (standard input closed, --exit-with-launcher); stopping")]
    private static partial void LogLauncherGone(ILogger logger, string silo);

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning,
        Message = "No PostgreSQL connection string (--postgres, LIFL_POSTGRES or Lifl:PostgreSql:ConnectionString): this silo keeps membership in memory and no other silo can join it")]
    private static partial void LogNoDatabase(ILogger logger);
}
