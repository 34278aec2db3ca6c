using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Runtime.Networking;

namespace Orleans.LIFL.Runtime.MembershipService;

/// <summary>
/// A silo's failure detector: it probes every other active silo each period over its own connection, votes a silo dead
/// after consecutive unanswered probes, re-reads the membership table periodically and writes its own IAmAlive time.
/// A probe counts as answered when the probed silo sent anything on that connection during it: its answer may be
/// queued in the TCP stream behind hundreds of MB of model updates, but a silo that writes frames is not dead.
/// Traffic alone never makes a probe unnecessary: one is sent every period.
/// </summary>
internal sealed partial class ClusterHealthMonitor : IAsyncDisposable
{
    private readonly SiloAddress _self;
    private readonly MembershipTableManager _membership;
    private readonly TcpSiloTransport _transport;
    private readonly MembershipOptions _options;
    private readonly Func<MembershipEntry> _selfEntry;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<SiloAddress, int> _misses = [];
    private readonly CancellationTokenSource _stopping = new();
    private Task? _probing;
    private Task? _housekeeping;

    public ClusterHealthMonitor(
        SiloAddress self,
        MembershipTableManager membership,
        TcpSiloTransport transport,
        MembershipOptions options,
        Func<MembershipEntry> selfEntry,
        TimeProvider time,
        ILogger<ClusterHealthMonitor> logger)
    {
        _self = self;
        _membership = membership;
        _transport = transport;
        _options = options;
        _selfEntry = selfEntry;
        _time = time;
        _logger = logger;
    }

    public void Start()
    {
        _probing = ProbeLoopAsync(_stopping.Token);
        _housekeeping = HousekeepingLoopAsync(_stopping.Token);
    }

    private async Task ProbeLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.ProbePeriod, _time);
        while (await WaitAsync(timer, cancellationToken).ConfigureAwait(false))
        {
            var view = _membership.CurrentView;
            if (view.GetStatus(_self) != SiloStatus.Active)
            {
                continue;
            }

            var targets = view.ActiveSilos.Where(s => !s.Equals(_self)).ToList();
            var started = _time.GetTimestamp();
            var paused = GC.GetTotalPauseDuration();
            // Not cancellable: awaited below whatever happens, so shutdown mid-round cannot fault the loop.
            var scheduling = Task.Run(() => _time.GetElapsedTime(started), CancellationToken.None);
            var answers = await Task.WhenAll(targets.Select(s => _transport.PingAsync(s, _options.ProbeTimeout, cancellationToken))).ConfigureAwait(false);
            var delay = await scheduling.ConfigureAwait(false);
            var unanswered = answers.Count(a => a is null);
            if (unanswered > 0)
            {
                LogProbeRound(_logger, _time.GetElapsedTime(started).TotalMilliseconds, delay.TotalMilliseconds, (GC.GetTotalPauseDuration() - paused).TotalMilliseconds);
                if (delay > _options.ProbeTimeout / 2)
                {
                    // This silo could not have read the answers in time: a starved prober does not judge others (as
                    // Orleans' local health monitor keeps a degraded silo from voting).
                    LogDegraded(_logger, delay.TotalMilliseconds, unanswered);
                    continue;
                }
            }

            for (var i = 0; i < targets.Count; i++)
            {
                var answered = answers[i] is not null || _transport.HeardFromSince(targets[i], started);
                await OnProbeAsync(view, targets[i], answered).ConfigureAwait(false);
            }

            foreach (var gone in _misses.Keys.Where(s => !targets.Contains(s)).ToList())
            {
                _misses.Remove(gone);
            }
        }
    }

    private async Task OnProbeAsync(ClusterView view, SiloAddress target, bool answered)
    {
        if (answered)
        {
            _misses.Remove(target);
            return;
        }

        var misses = _misses[target] = _misses.GetValueOrDefault(target) + 1;
        LogMissedProbe(_logger, target, misses, _options.MissedProbesLimit);
        if (misses < _options.MissedProbesLimit || _membership.CurrentView.GetStatus(_self) != SiloStatus.Active)
        {
            return;
        }

        var votesNeeded = Math.Max(1, Math.Min(_options.NumVotesForDeathDeclaration, view.ActiveSilos.Count - 1));
        try
        {
            if (await _membership.SuspectAsync(target, _self, votesNeeded, _options.DeathVoteExpirationTimeout).ConfigureAwait(false))
            {
                _misses.Remove(target);
            }
        }
        catch (Exception error)
        {
            LogVoteFailed(_logger, error, target);
        }
    }

    private async Task HousekeepingLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.TableRefreshPeriod, _time);
        var lastAlive = _time.GetTimestamp();
        while (await WaitAsync(timer, cancellationToken).ConfigureAwait(false))
        {
            try
            {
                await _membership.RefreshAsync().ConfigureAwait(false);
                if (_time.GetElapsedTime(lastAlive) >= _options.IAmAlivePeriod)
                {
                    await _membership.UpdateIAmAliveAsync(_selfEntry()).ConfigureAwait(false);
                    lastAlive = _time.GetTimestamp();
                }
            }
            catch (Exception error)
            {
                LogTableUnavailable(_logger, error);
            }
        }
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var loop in new[] { _probing, _housekeeping })
        {
            if (loop is not null)
            {
                await loop.ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(EventId = 1101, Level = LogLevel.Debug, Message = "Probe of {Target} unanswered ({Misses} of {Limit})")]
    private static partial void LogMissedProbe(ILogger logger, SiloAddress target, int misses, int limit);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Debug, Message = "A probe round with misses took {RoundMs:0} ms: work waited {DelayMs:0} ms for a thread, the GC paused {GcMs:0} ms")]
    private static partial void LogProbeRound(ILogger logger, double roundMs, double delayMs, double gcMs);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "Work waited {DelayMs:0} ms for a thread here: {Unanswered} unanswered probes not counted")]
    private static partial void LogDegraded(ILogger logger, double delayMs, int unanswered);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "Could not record a suspicion of {Target}")]
    private static partial void LogVoteFailed(ILogger logger, Exception error, SiloAddress target);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Warning, Message = "The membership table could not be read or written")]
    private static partial void LogTableUnavailable(ILogger logger, Exception error);
}
