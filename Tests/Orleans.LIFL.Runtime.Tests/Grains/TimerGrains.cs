using Orleans.LIFL.Runtime.Tests.Infrastructure;
using Orleans.LIFL.Timers;

namespace Orleans.LIFL.Runtime.Tests.Grains;

public interface ITimerGrain : ILifecycleGrain
{
    Task StartTimer(TimeSpan dueTime, TimeSpan period, bool interleave, bool keepAlive);

    Task StopTimer();

    Task<int> Ticks();

    Task Hold(string entered, string gate);

    Task<List<string>> Log();
}

/// <summary>Counts its timer's ticks in <see cref="Signals"/> ("key/tick#n") and logs ticks and holds in order.</summary>
public sealed class TimerGrain : LifecycleGrain, ITimerGrain
{
    private readonly List<string> _log = [];
    private IGrainTimer? _timer;
    private int _ticks;

    public Task StartTimer(TimeSpan dueTime, TimeSpan period, bool interleave, bool keepAlive)
    {
        _timer = RegisterGrainTimer(
            static (self, _) => self.OnTick(),
            this,
            new GrainTimerCreationOptions(dueTime, period) { Interleave = interleave, KeepAlive = keepAlive });
        return Task.CompletedTask;
    }

    private Task OnTick()
    {
        _ticks++;
        _log.Add("tick");
        Signals.Set($"{this.GetPrimaryKeyString()}/tick#{_ticks}");
        return Task.CompletedTask;
    }

    public Task StopTimer()
    {
        _timer?.Dispose();
        return Task.CompletedTask;
    }

    public Task<int> Ticks() => Task.FromResult(_ticks);

    public async Task Hold(string entered, string gate)
    {
        _log.Add("hold-start");
        Signals.Set(entered);
        await Signals.WaitAsync(gate);
        _log.Add("hold-end");
    }

    public Task<List<string>> Log() => Task.FromResult(_log);
}
