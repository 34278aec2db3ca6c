using System.CommandLine;
using Orleans.LIFL.Silo;

namespace Orleans.LIFL.Cli.Silo;

/// <summary><c>lifl silo</c>: a cluster silo process (TCP, PostgreSQL membership, directory and state).</summary>
internal static class SiloCommand
{
    private static readonly (string Name, string Description)[] ValueOptions =
    [
        ("--cluster-id", "Cluster id (default dev); silos and clients of one cluster share it."),
        ("--service-id", "Service id grain state is keyed by (default: the cluster id's default)."),
        ("--secret", "Cluster secret (at least 16 characters) every silo and client proves it knows; or LIFL_SECRET."),
        ("--postgres", "Npgsql connection string of the cluster database; or LIFL_POSTGRES."),
        ("--listen", "Address to listen on (default 127.0.0.1)."),
        ("--advertise", "Address other silos and clients use (default: the listen address)."),
        ("--silo-port", "Silo-to-silo port (default 11111; 0 picks a free one)."),
        ("--gateway-port", "Client gateway port (default 30000; 0 picks a free one; -1 none)."),
        ("--name", "Silo name for logs and the dashboard."),
        ("--node-id", "Which node this silo is on (default: /etc/machine-id); silos of one node hand buffers over by descriptor."),
        ("--pool", "Name of the node's shared-memory pool (default lifl-CLUSTERID)."),
        ("--ebpf", "true or false: redirect messages between this node's silos with eBPF (default true; needs root)."),
        ("--storage", "memory or postgres: where grain state is kept (default postgres with --postgres, else memory)."),
        ("--dashboard", "true: serve the web dashboard's API from this silo (default false)."),
        ("--dashboard-port", "The dashboard's port (default 8080; 0 picks a free one)."),
        ("--dashboard-listen", "The dashboard's address (default 127.0.0.1; any other needs --dashboard-token)."),
        ("--dashboard-token", "A token (at least 16 characters) every dashboard request must carry."),
        ("--exit-with-launcher", "true: stop once standard input closes, i.e. once the process that started this one (a test, a benchmark) is gone, however it ended (default false)."),
    ];

    public static Command Create()
    {
        var options = ValueOptions.Select(o => new Option<string>(o.Name) { Description = o.Description }).ToList();
        var config = new Option<string[]>("--config") { Description = "An appsettings-style JSON file (repeatable).", AllowMultipleArgumentsPerToken = false };
        var grains = new Option<string[]>("--grains") { Description = "An assembly with grain classes to host (repeatable).", AllowMultipleArgumentsPerToken = false };
        var command = new Command("silo", "Run a cluster silo: TCP endpoints, membership, directory and grain state in PostgreSQL.");
        foreach (var option in options)
        {
            command.Options.Add(option);
        }

        command.Options.Add(config);
        command.Options.Add(grains);
        command.SetAction((parseResult, cancellationToken) => LiflCommandLine.RunAsync(
            token =>
            {
                var args = new List<string>();
                foreach (var option in options)
                {
                    if (parseResult.GetValue(option) is { } value)
                    {
                        args.Add(option.Name);
                        args.Add(value);
                    }
                }

                foreach (var file in parseResult.GetValue(config) ?? [])
                {
                    args.Add("--config");
                    args.Add(file);
                }

                foreach (var assembly in parseResult.GetValue(grains) ?? [])
                {
                    args.Add("--grains");
                    args.Add(assembly);
                }

                return SiloProgram.RunAsync(args, Console.Out, token);
            },
            cancellationToken));
        return command;
    }
}
