using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Grains.Demo;
using Orleans.LIFL.Hosting;
using Orleans.LIFL.Streams;
using Spectre.Console;

namespace Orleans.LIFL.Cli.Demo;

/// <summary>
/// The demo: one embedded silo with a short collection age, and three steps that each wait for the journal entries
/// they should cause (activation on demand, idle collection and reactivation, an implicit stream subscriber).
/// </summary>
internal static class DemoScenario
{
    public const string StreamProviderName = "Default";

    private static readonly TimeSpan CollectionAge = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan CollectionQuantum = TimeSpan.FromSeconds(1);

    // Idle collection takes at most CollectionAge + CollectionQuantum; the rest is room for a slow machine.
    private static readonly TimeSpan CollectionTimeout = CollectionAge + CollectionQuantum + TimeSpan.FromSeconds(10);
    private static readonly TimeSpan StepTimeout = TimeSpan.FromSeconds(10);

    private static readonly string[] Greeters = ["alice", "bob", "carol"];

    public static async Task<int> RunAsync(bool verbose, CancellationToken cancellationToken)
    {
        var total = Stopwatch.StartNew();
        AnsiConsole.Write(new Rule("[bold]lifl demo[/]: one embedded silo").LeftJustified());
        AnsiConsole.MarkupLine(
            $"Memory grain storage, memory streams \"{StreamProviderName}\", idle activations collected after [bold]{CollectionAge.TotalSeconds:0} s[/] (checked every {CollectionQuantum.TotalSeconds:0} s).");

        using var host = BuildHost(verbose);
        var journal = host.Services.GetRequiredService<DemoJournal>();
        var feed = new JournalFeed(journal);
        await host.StartAsync(cancellationToken);
        var stopped = false;
        try
        {
            var client = host.Services.GetRequiredService<IClusterClient>();
            AnsiConsole.MarkupLine($"[grey]silo started in {total.Elapsed.TotalMilliseconds:0} ms[/]");

            await ActivationOnDemandAsync(client, feed, cancellationToken);
            await IdleCollectionAsync(client, feed, cancellationToken);
            await StreamEventAsync(client, feed, cancellationToken);

            Step("4", "Shutdown", "Stopping the silo deactivates what is still active (reason ShuttingDown).");
            await host.StopAsync(cancellationToken);
            stopped = true;
            await feed.DrainAsync();
        }
        finally
        {
            if (!stopped)
            {
                await host.StopAsync(CancellationToken.None);
            }
        }

        WriteSummary(feed.Seen, total.Elapsed);
        return ExitCodes.Success;
    }

    private static async Task ActivationOnDemandAsync(IClusterClient client, JournalFeed feed, CancellationToken cancellationToken)
    {
        Step("1", "Activation on demand", "Nothing is created up front: the first call to a grain activates it.");
        foreach (var name in Greeters)
        {
            var reply = await client.GetGrain<IGreeterGrain>(name).SayHello("lifl demo");
            await feed.WaitForAsync($"greeter/{name} to activate", 1, e => IsGreeter(e, name, JournalEventKind.Activated), StepTimeout, cancellationToken);
            ShowReply(reply);
        }

        AnsiConsole.MarkupLine("  A second call to alice goes to the same activation (no new journal entry):");
        ShowReply(await client.GetGrain<IGreeterGrain>(Greeters[0]).SayHello("lifl demo"));
    }

    private static async Task IdleCollectionAsync(IClusterClient client, JournalFeed feed, CancellationToken cancellationToken)
    {
        Step("2", "Idle collection", $"No more calls: after {CollectionAge.TotalSeconds:0} s idle the collector deactivates the greeters.");
        AnsiConsole.MarkupLine($"  [grey]waiting for {Greeters.Length} idle deactivations (at most {CollectionTimeout.TotalSeconds:0} s)[/]");
        await ConsoleStatus.RunAsync(
            "waiting for the idle collector",
            _ => feed.WaitForAsync(
                $"{Greeters.Length} greeters to be collected as idle",
                Greeters.Length,
                e => e.Kind == JournalEventKind.Deactivated && e.Reason == DeactivationReasonCode.ActivationIdle && e.Grain.StartsWith("greeter/", StringComparison.Ordinal),
                CollectionTimeout,
                cancellationToken));

        AnsiConsole.MarkupLine("  Calling alice again activates her anew; the greeting count starts over:");
        var reply = await client.GetGrain<IGreeterGrain>(Greeters[0]).SayHello("lifl demo");
        await feed.WaitForAsync("greeter/alice to activate again", 1, e => IsGreeter(e, Greeters[0], JournalEventKind.Activated), StepTimeout, cancellationToken);
        ShowReply(reply);
    }

    private static async Task StreamEventAsync(IClusterClient client, JournalFeed feed, CancellationToken cancellationToken)
    {
        Step("3", "A stream event", $"An alert on stream (\"{AlertGrain.StreamNamespace}\", \"kitchen\") activates the implicitly subscribed alert grain for the kitchen.");
        var stream = client.GetStreamProvider(StreamProviderName).GetStream<Alert>(StreamId.Create(AlertGrain.StreamNamespace, "kitchen"));
        var alert = new Alert("kitchen", AlertSeverity.Warning, "smoke detected");
        AnsiConsole.MarkupLine($"  [grey]publishing[/] {alert.Severity} alert for {Markup.Escape(alert.Room)}: {Markup.Escape(alert.Message)}");
        await stream.OnNextAsync(alert);
        await feed.WaitForAsync(
            "alert/kitchen to activate and receive the alert",
            2,
            e => e.Grain == "alert/kitchen" && e.Kind is JournalEventKind.Activated or JournalEventKind.EventReceived,
            StepTimeout,
            cancellationToken);

        var count = await client.GetGrain<IAlertGrain>("kitchen").GetAlertCount();
        AnsiConsole.MarkupLine($"  [grey]->[/] alert/kitchen has received {count} alert(s)");
        if (count != 1)
        {
            throw new CommandFailedException($"alert/kitchen reports {count} alerts; one was published.");
        }
    }

    private static IHost BuildHost(bool verbose)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (verbose)
        {
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information);
        }

        // The demo ends by itself; "press Ctrl+C to shut down" would only mislead.
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);

        builder.Services.AddSingleton<DemoJournal>();
        builder.UseLiflSilo(silo => silo
            .AddMemoryGrainStorageAsDefault()
            .AddMemoryStreams(StreamProviderName)
            .Configure<GrainCollectionOptions>(o =>
            {
                o.CollectionAge = CollectionAge;
                o.CollectionQuantum = CollectionQuantum;
            }));
        return builder.Build();
    }

    private static bool IsGreeter(JournalEntry entry, string name, JournalEventKind kind) =>
        entry.Kind == kind && entry.Grain == $"greeter/{name}";

    private static void Step(string number, string title, string explanation)
    {
        AnsiConsole.WriteLine();
        AnsiConsole.Write(new Rule($"[bold]{number}. {Markup.Escape(title)}[/]").LeftJustified().RuleStyle("grey"));
        AnsiConsole.MarkupLine(Markup.Escape(explanation));
    }

    private static void ShowReply(string reply) => AnsiConsole.MarkupLine($"  [grey]->[/] {Markup.Escape(reply)}");

    private static void WriteSummary(IReadOnlyList<JournalEntry> entries, TimeSpan elapsed)
    {
        AnsiConsole.WriteLine();
        var table = new Table().Title("[bold]journal summary[/]").Border(TableBorder.Rounded)
            .AddColumn("grain type")
            .AddColumn(new TableColumn("activations").RightAligned())
            .AddColumn(new TableColumn("collected idle").RightAligned())
            .AddColumn(new TableColumn("other deactivations").RightAligned())
            .AddColumn(new TableColumn("events").RightAligned());

        void AddRow(string name, IEnumerable<JournalEntry> rows)
        {
            var list = rows.ToList();
            table.AddRow(
                Markup.Escape(name),
                list.Count(e => e.Kind == JournalEventKind.Activated).ToString("N0"),
                list.Count(e => e.Kind == JournalEventKind.Deactivated && e.Reason == DeactivationReasonCode.ActivationIdle).ToString("N0"),
                list.Count(e => e.Kind == JournalEventKind.Deactivated && e.Reason != DeactivationReasonCode.ActivationIdle).ToString("N0"),
                list.Count(e => e.Kind == JournalEventKind.EventReceived).ToString("N0"));
        }

        foreach (var group in entries.GroupBy(e => e.Grain[..e.Grain.IndexOf('/', StringComparison.Ordinal)]).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            AddRow(group.Key, group);
        }

        AddRow("total", entries);
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"[green]demo finished[/] in {elapsed.TotalSeconds:0.0} s");
    }
}
