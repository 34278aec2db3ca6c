using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Runtime.Tests.Infrastructure;

namespace Orleans.LIFL.Runtime.Tests.Grains;

/// <summary>
/// Measures, instead of assuming, how the runtime runs a grain's code: how many requests were in progress at once
/// (across their awaits) and how many threads ran its code at the same instant.
/// </summary>
public interface IConcurrencyProbeGrain : IGrainWithStringKey
{
    Task Run(int awaits);

    Task<(int MaxRequests, int MaxThreads)> Result();
}

public sealed class ConcurrencyProbe
{
    private int _requests;
    private int _threads;
    private int _maxRequests;
    private int _maxThreads;

    public async Task Run(int awaits)
    {
        Track(ref _requests, ref _maxRequests, +1);
        try
        {
            for (var i = 0; i < awaits; i++)
            {
                SynchronousSection();
                await Task.Yield();
                SynchronousSection();
                await Task.Delay(1);
            }
        }
        finally
        {
            Track(ref _requests, ref _maxRequests, -1);
        }
    }

    public (int, int) Result() => (Volatile.Read(ref _maxRequests), Volatile.Read(ref _maxThreads));

    private void SynchronousSection()
    {
        Track(ref _threads, ref _maxThreads, +1);
        Thread.SpinWait(2_000);
        Track(ref _threads, ref _maxThreads, -1);
    }

    private static void Track(ref int current, ref int max, int delta)
    {
        var now = Interlocked.Add(ref current, delta);
        int seen;
        while (now > (seen = Volatile.Read(ref max)) && Interlocked.CompareExchange(ref max, now, seen) != seen)
        {
        }
    }
}

public sealed class ConcurrencyProbeGrain : Grain, IConcurrencyProbeGrain
{
    private readonly ConcurrencyProbe _probe = new();

    public Task Run(int awaits) => _probe.Run(awaits);

    public Task<(int MaxRequests, int MaxThreads)> Result() => Task.FromResult(_probe.Result());
}

[Reentrant]
public sealed class ReentrantProbeGrain : Grain, IConcurrencyProbeGrain
{
    private readonly ConcurrencyProbe _probe = new();

    public Task Run(int awaits) => _probe.Run(awaits);

    public Task<(int MaxRequests, int MaxThreads)> Result() => Task.FromResult(_probe.Result());
}

/// <summary>A non-reentrant grain whose methods wait on named <see cref="Signals"/>.</summary>
public interface IGateGrain : IGrainWithStringKey
{
    /// <summary>Sets <paramref name="entered"/>, then holds the activation until <paramref name="gate"/> is set.</summary>
    Task Hold(string entered, string gate);

    Task<string> Normal(string entered);

    [AlwaysInterleave]
    Task<string> Interleaving(string entered);

    [ReadOnly]
    Task ReadHold(string entered, string gate);

    [OneWay]
    Task FireAndForget(string gate, string done);

    Task NeverAnswers();

    [ResponseTimeout("00:00:00.500")]
    Task NeverAnswersQuickly();

    Task<List<string>> Log();
}

public class GateGrain : Grain, IGateGrain
{
    private readonly List<string> _log = [];

    public async Task Hold(string entered, string gate)
    {
        _log.Add("hold-start");
        Signals.Set(entered);
        await Signals.WaitAsync(gate);
        _log.Add("hold-end");
    }

    public Task<string> Normal(string entered)
    {
        _log.Add("normal");
        Signals.Set(entered);
        return Task.FromResult("normal");
    }

    public Task<string> Interleaving(string entered)
    {
        _log.Add("interleaving");
        Signals.Set(entered);
        return Task.FromResult("interleaving");
    }

    public async Task ReadHold(string entered, string gate)
    {
        Signals.Set(entered);
        await Signals.WaitAsync(gate);
    }

    public async Task FireAndForget(string gate, string done)
    {
        await Signals.WaitAsync(gate);
        Signals.Set(done);
    }

    public Task NeverAnswers() => new TaskCompletionSource().Task;

    public Task NeverAnswersQuickly() => new TaskCompletionSource().Task;

    public Task<List<string>> Log() => Task.FromResult(_log);
}

public interface ILocalGateGrain : IGateGrain;

/// <summary>A gate grain that activates on the silo the call entered through.</summary>
[Orleans.LIFL.Placement.PreferLocalPlacement]
public sealed class LocalGateGrain : GateGrain, ILocalGateGrain;

public interface IDeadlockGrain : IGrainWithStringKey
{
    /// <summary>Calls <paramref name="other"/>, which calls back this grain.</summary>
    Task CallThrough(IDeadlockGrain other);

    Task CallBack(IDeadlockGrain caller);

    Task CallSelf();

    Task Ping();
}

public class DeadlockGrain : Grain, IDeadlockGrain
{
    public Task CallThrough(IDeadlockGrain other) => other.CallBack(AsReference<IDeadlockGrain>());

    public Task CallBack(IDeadlockGrain caller) => caller.Ping();

    public Task CallSelf() => AsReference<IDeadlockGrain>().Ping();

    public Task Ping() => Task.CompletedTask;
}

public interface ILocalDeadlockGrain : IDeadlockGrain;

[Orleans.LIFL.Placement.PreferLocalPlacement]
public sealed class LocalDeadlockGrain : DeadlockGrain, ILocalDeadlockGrain;

public interface IWorkerGrain : IGrainWithStringKey
{
    Task<Guid> Work(string entered, string gate);
}

[StatelessWorker(2)]
public sealed class WorkerGrain : Grain, IWorkerGrain
{
    private readonly Guid _id = Guid.NewGuid();

    public async Task<Guid> Work(string entered, string gate)
    {
        var n = Signals.Increment(entered);
        Signals.Set($"{entered}#{n}");
        await Signals.WaitAsync(gate);
        return _id;
    }
}
