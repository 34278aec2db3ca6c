using System.Diagnostics;
using System.Text.Json;
using Orleans.LIFL.Silo;

namespace Orleans.LIFL.Benchmarks.Round;

/// <summary>The round benchmark's trainer processes (<c>lifl fl bench-trainer</c>), started once and given a command per run.</summary>
internal sealed class TrainerProcesses : IAsyncDisposable
{
    private readonly List<Process> _processes;

    private TrainerProcesses(List<Process> processes)
    {
        _processes = processes;
    }

    public int Count => _processes.Count;

    public static TrainerProcesses Start(int count, string secret)
    {
        var processes = new List<Process>();
        for (var i = 0; i < count; i++)
        {
            var start = new ProcessStartInfo("dotnet")
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = false,
                UseShellExecute = false,
            };
            start.ArgumentList.Add(SiloProcess.LocateLiflProgram());
            start.ArgumentList.Add("fl");
            start.ArgumentList.Add("bench-trainer");
            start.Environment["LIFL_SECRET"] = secret;
            start.Environment["DOTNET_gcServer"] = "0";
            processes.Add(Process.Start(start) ?? throw new InvalidOperationException("Could not start a trainer process."));
        }

        return new TrainerProcesses(processes);
    }

    /// <summary>Gives every process its share of the clients (process i talks to gateway i mod the gateways) and waits until all are done.</summary>
    public async Task RunAsync(TrainerCommand template, int clients, IReadOnlyList<string> gateways, TimeSpan patience, CancellationToken cancellationToken)
    {
        var first = 0;
        var answers = new List<Task<string?>>();
        for (var i = 0; i < _processes.Count; i++)
        {
            var share = (clients / _processes.Count) + (i < clients % _processes.Count ? 1 : 0);
            if (share == 0)
            {
                continue;
            }

            var command = template with { Gateways = [gateways[i % gateways.Count]], FirstClient = first, Clients = share };
            first += share;
            await _processes[i].StandardInput.WriteLineAsync(JsonSerializer.Serialize(command, RoundTrainers.Json).AsMemory(), cancellationToken);
            await _processes[i].StandardInput.FlushAsync(cancellationToken);
            answers.Add(_processes[i].StandardOutput.ReadLineAsync(cancellationToken).AsTask());
        }

        var done = await Task.WhenAll(answers).WaitAsync(patience, cancellationToken);
        if (done.FirstOrDefault(a => a != RoundTrainers.Done) is { } failed)
        {
            throw new InvalidOperationException($"A trainer process answered '{failed ?? "nothing (it exited)"}'.");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes)
        {
            try
            {
                process.StandardInput.Close();
                if (!process.WaitForExit(TimeSpan.FromSeconds(5)))
                {
                    process.Kill(entireProcessTree: true);
                }

                await process.WaitForExitAsync();
            }
            catch (InvalidOperationException)
            {
            }

            process.Dispose();
        }
    }
}
