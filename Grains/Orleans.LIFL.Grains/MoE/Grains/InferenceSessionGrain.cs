using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Concurrency;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Grains.FL;
using Orleans.LIFL.Grains.MoE.Model;

namespace Orleans.LIFL.Grains.MoE;

/// <summary>
/// Tarragon's attention worker for one request: it holds the KV cache, runs embeddings, attention, routing and the LM
/// head, sends each layer's token batch to its chosen experts through its routing table — one token while decoding,
/// every known one of a prefill — and streams tokens out (clients long-poll <see cref="Read"/>). Every new position's
/// KV segment goes to a checkpoint store on another silo in the background. The key is "{request}#{incarnation}": when the session's silo dies, the client opens the next
/// incarnation elsewhere, which restores the committed prefix and decodes on, producing the same tokens.
/// </summary>
public interface IInferenceSessionGrain : IGrainWithStringKey
{
    /// <summary>
    /// Starts the generation (idempotent for the same request). With <paramref name="restoreFrom"/> (the checkpoint
    /// store an earlier incarnation reported last, in <see cref="SessionOpened.CheckpointStore"/> or
    /// <see cref="TokenBatch.CheckpointStore"/>), the KV cache and the tokens are first taken from that store as far as
    /// it committed. The checkpoint goes on in the store of this deployment's sessions on this silo (placed on another
    /// one): a resumed incarnation opened next to the store it restores from sends its restored prefix there again, and
    /// the old copy is dropped once the new store holds it. <paramref name="delivered"/> are the
    /// tokens the client has already (none at first): a resumed incarnation recomputes the positions past the checkpoint
    /// from them in one prefill instead of decoding them one by one, and fails if it would produce another token.
    /// </summary>
    Task<SessionOpened> Open(GenerationRequest request, string? restoreFrom, int[] delivered);

    /// <summary>The decoding loop; started by <see cref="Open"/>.</summary>
    [OneWay]
    Task Run();

    /// <summary>Tokens from index <paramref name="from"/>, waiting up to <paramref name="wait"/> for at least one.</summary>
    [AlwaysInterleave]
    [ResponseTimeout("00:02:00")]
    Task<TokenBatch> Read(int from, TimeSpan wait);

    /// <summary>A newer routing table from the deployment (promoted shadows, a new shadow).</summary>
    [AlwaysInterleave]
    [OneWay]
    Task UpdateRoutes(ExpertRoutingTable table);

    /// <summary>The deployment restarts (baseline): stop, and let the client open the request again.</summary>
    [AlwaysInterleave]
    Task Abort(string reason);

    /// <summary>The deployment was taken out of service: stop, and tell the client why (no failover mends it).</summary>
    [AlwaysInterleave]
    Task Fail(string reason);

    /// <summary>The client has every token: drop the checkpoint and deactivate.</summary>
    [AlwaysInterleave]
    Task Close();
}

public static class InferenceSessions
{
    /// <summary>The key of incarnation <paramref name="incarnation"/> of a request's session, placed on the calling silo.</summary>
    public static string Key(string requestId, int incarnation) => $"{requestId}#{incarnation}";

    /// <summary>The key of incarnation <paramref name="incarnation"/> of a request's session, placed on <paramref name="silo"/>.</summary>
    public static string Key(string requestId, int incarnation, string silo) => LocalityAwarePlacement.Key("", silo, Key(requestId, incarnation));

    public static (string RequestId, int Incarnation) Parse(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var request = LocalityAwarePlacement.TryParse(key, out _, out _, out var rest) ? rest : key;
        var hash = request.LastIndexOf('#');
        return hash > 0 && int.TryParse(request.AsSpan(hash + 1), out var incarnation)
            ? (request[..hash], incarnation)
            : throw new ArgumentException($"'{key}' is not a session key ([/silo/]request#incarnation).", nameof(key));
    }
}

[NamedSiloOrLocalPlacement]
public sealed partial class InferenceSessionGrain(TimeProvider time, IServiceProvider services, ILogger<InferenceSessionGrain> logger) : Grain, IInferenceSessionGrain
{
    private readonly List<int> _tokens = [];

    /// <summary>After a failed checkpoint send, the next waits 50 ms, doubling with each failure up to a second.</summary>
    private readonly SendBackoff _storeBackoff = new(TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(1), time);

    private GenerationRequest? _request;
    private SessionOpened? _opened;
    private MoeDeploymentSpec? _spec;
    private MoeModel? _model;
    private KvCache? _cache;
    private ExpertRouter? _router;
    private TokenMeter? _meter;
    private Sampling? _sampling;
    private IMoeDeploymentGrain? _deployment;
    private IKvCheckpointStoreGrain? _store;

    /// <summary>The node's shared pool the KV batches are sent in (taken when checkpointing begins: only then is it needed).</summary>
    private SharedBufferPool? _pool;
    private string? _storeKey;
    private string? _storeSilo;

    /// <summary>The store a resumed session restored from, until its own store holds what it restored.</summary>
    private (IKvCheckpointStoreGrain Store, string Key, string? Silo, int Through)? _restoredFrom;
    private int[] _outputs = [];
    private int[] _delivered = [];
    private TaskCompletionSource _changed = NewSignal();
    private Task<int>? _checkpointing;
    private bool _storeLost;
    private bool _poolFailureLogged;
    private int _committed = -1;
    private long _unsentSince;
    private TimeSpan _sendAfter;
    private bool _running;
    private string? _failure;
    private bool _aborted;
    private bool _closed;

    /// <summary>How long a session whose table ran out of replicas waits for the deployment to finish handling a failure.</summary>
    private static readonly TimeSpan RoutesPatience = TimeSpan.FromSeconds(10);

    /// <summary>The most positions one step takes through the layers together (a prefill's batch).</summary>
    private const int MaxStepPositions = 32;

    private bool Finished => _request is not null && _tokens.Count >= _request.MaxTokens;

    private bool Stopped => _aborted || _closed || _failure is not null;

    public async Task<SessionOpened> Open(GenerationRequest request, string? restoreFrom, int[] delivered)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(delivered);
        var (requestId, _) = InferenceSessions.Parse(GrainId.Key);
        if (request.RequestId != requestId)
        {
            throw new ArgumentException($"Request {request.RequestId} was sent to session {GrainId.Key}.", nameof(request));
        }

        if (_request is not null)
        {
            return _request.SameGeneration(request)
                ? _opened!
                : throw new ArgumentException($"Session {GrainId.Key} already runs another generation of request {requestId}.", nameof(request));
        }

        var started = time.GetTimestamp();
        _deployment = GrainFactory.GetGrain<IMoeDeploymentGrain>(request.Deployment);
        // A resumed session reads its checkpoint while it attaches: two round trips to two silos at once, not in turn,
        // awaited together (either's failure fails the Open, and neither is left unobserved).
        var attaching = _deployment.Attach(GrainId.Key, GrainContext.Silo.ToString());
        var restoring = restoreFrom is not null ? GrainFactory.GetGrain<IKvCheckpointStoreGrain>(restoreFrom).Restore(requestId) : null;
        try
        {
            await (restoring is null ? attaching : Task.WhenAll(attaching, restoring));
        }
        catch
        {
            // Whichever failed, a checkpoint that did arrive lets its bytes go.
            if (restoring is { IsCompletedSuccessfully: true })
            {
                restoring.Result.Dispose();
            }

            throw;
        }

        using var checkpoint = restoring?.Result;
        var attachment = await attaching;
        var spec = attachment.Spec;
        var model = MoeModelCache.Get(request.Deployment, spec, attachment.Routes.Epoch);
        var config = model.Config;
        if ((request.Problem(config.MaxSequence) ?? DeliveredProblem(request, delivered, config.Vocabulary)) is { } problem)
        {
            _ = _deployment.Detach(GrainId.Key);
            throw new ArgumentException($"Request {requestId}: {problem}.", nameof(request));
        }

        _spec = spec;
        _model = model;
        _cache = new KvCache(config);
        _outputs = new int[config.MaxSequence];
        _sampling = new Sampling(request.Temperature, request.Seed);
        _delivered = delivered;
        var deployment = _deployment;
        _router = new ExpertRouter(
            attachment.Routes, spec, r => GrainFactory.GetGrain<IExpertGrain>(r.Key), time, OnExpertFailure,
            () => deployment.CurrentRoutes(GrainId.Key, GrainContext.Silo.ToString(), RoutesPatience));
        var restoredPositions = 0;
        if (spec.Checkpointing && request.Checkpoint)
        {
            try
            {
                _pool = services.GetRequiredService<SharedBufferPool>();
            }
            catch (InvalidOperationException error)
            {
                _ = _deployment.Detach(GrainId.Key);
                throw new InvalidOperationException(
                    $"Request {requestId}: deployment {request.Deployment} checkpoints KV caches, which go through the node's shared pool: {error.Message}", error);
            }

            _storeKey = KvCheckpointStores.Key(request.Deployment, GrainContext.Silo.ToString());
            _store = GrainFactory.GetGrain<IKvCheckpointStoreGrain>(_storeKey);
            if (checkpoint?.Request is { } stored && stored.SameGeneration(request))
            {
                restoredPositions = Apply(request, checkpoint);
                var differs = Enumerable.Range(0, Math.Min(_tokens.Count, delivered.Length)).FirstOrDefault(i => _tokens[i] != delivered[i], -1);
                if (differs >= 0)
                {
                    _ = _deployment.Detach(GrainId.Key);
                    throw new ArgumentException(
                        $"Request {requestId}: delivered token {differs} is {delivered[differs]}, but the checkpoint holds {_tokens[differs]} there.",
                        nameof(delivered));
                }

                if (restoreFrom == _storeKey)
                {
                    // The store holds this request already: no need to begin it again (one round trip less on the way back).
                    (_storeSilo, _committed) = (checkpoint.Silo, restoredPositions - 1);
                }
                else
                {
                    // The store restored from may be on this silo (the client opens a resumed session next to its
                    // checkpoint): the checkpoint moves to this silo's store, placed elsewhere, sent from position 0 in
                    // the background, and the one restored from stays the one to resume from until then.
                    _restoredFrom = (GrainFactory.GetGrain<IKvCheckpointStoreGrain>(restoreFrom!), restoreFrom!, checkpoint.Silo, restoredPositions - 1);
                    (_storeLost, _committed) = (true, -1);
                }
            }
            else
            {
                _storeSilo = await _store.Begin(request, config.Layers, config.ModelDim);
            }
        }

        _request = request;
        _meter = new TokenMeter(GrainId.Key, GrainContext.Silo.ToString(), request.MaxTokens, time);
        var (store, storeSilo) = ResumeFrom;
        _opened = new SessionOpened(
            GrainId.Key, GrainContext.Silo.ToString(), restoredPositions, _tokens.Count, time.GetElapsedTime(started), attachment.Routes.Epoch, spec.Recovery)
        {
            CheckpointStore = store,
            CheckpointSilo = storeSilo,
        };
        LogOpened(logger, GrainId.Key, GrainContext.Silo.ToString(), restoredPositions, _tokens.Count);
        _ = AsReference<IInferenceSessionGrain>().Run();
        return _opened;
    }

    public async Task Run()
    {
        if (_running || _request is null)
        {
            return;
        }

        _running = true;
        try
        {
            while (!Finished && !Stopped)
            {
                await StepAsync();
                PumpCheckpoint();
                Signal();
            }
        }
        catch (Exception error) when (_spec!.Recovery == RecoveryMode.Restart && error is ExpertUnavailableException)
        {
            // The baseline does not fail over: the deployment restarts everything, and the client opens the request again.
            _aborted = true;
            LogAbortedByFailure(logger, GrainId.Key, error.Message);
        }
        catch (Exception error)
        {
            _failure = $"{error.GetType().Name}: {error.Message}";
            LogFailed(logger, error, GrainId.Key);
        }
        finally
        {
            _running = false;
            Signal();
            var state = _failure is not null ? "failed" : _aborted ? "aborted" : Finished ? "done" : "stopped";
            _ = _deployment!.ReportTokens(_meter!.Final(_tokens.Count, state, _router!.Replays));
        }

        if (!Stopped)
        {
            await FlushCheckpointAsync();
        }
    }

    public async Task<TokenBatch> Read(int from, TimeSpan wait)
    {
        if (from < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(from), from, "token indexes start at 0");
        }

        if (_request is null)
        {
            throw new InvalidOperationException($"Session {GrainId.Key} was not opened (its silo may have restarted): open it again.");
        }

        if (from >= _tokens.Count && !Finished && _failure is null && !_aborted)
        {
            var changed = _changed.Task;
            await Task.WhenAny(changed, Task.Delay(wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromMinutes(1) ? TimeSpan.FromMinutes(1) : wait, time));
        }

        var tokens = from < _tokens.Count ? _tokens.GetRange(from, _tokens.Count - from).ToArray() : [];
        var (store, silo) = ResumeFrom;
        return new TokenBatch(from, tokens, Finished, _failure, _aborted, _router?.Replays ?? 0) { CheckpointStore = store, CheckpointSilo = silo };
    }

    public Task UpdateRoutes(ExpertRoutingTable table)
    {
        if (_router?.Update(table) == true)
        {
            LogRoutesUpdated(logger, GrainId.Key, table.Version);
        }

        return Task.CompletedTask;
    }

    public Task Abort(string reason)
    {
        _aborted = true;
        LogAborted(logger, GrainId.Key, reason);
        Signal();
        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public Task Fail(string reason)
    {
        _failure ??= reason;
        LogStopped(logger, GrainId.Key, reason);
        Signal();

        // The request will not resume: its checkpoint goes (not waited for: the store's silo may be gone, and the
        // deployment waits for every session it stops).
        if (_store is not null && _request is not null)
        {
            DropFrom(_store);
            DropRestoredFrom();
        }

        DeactivateOnIdle();
        return Task.CompletedTask;
    }

    public async Task Close()
    {
        _closed = true;
        Signal();
        if (_store is not null && _request is not null)
        {
            DropRestoredFrom();
            await _store.Drop(_request.RequestId);
        }

        _ = _deployment?.Detach(GrainId.Key);
        DeactivateOnIdle();
    }

    /// <summary>
    /// Decodes the next positions: all those whose input token is known already — the prompt's rest, or after a resume
    /// the tokens the client has past the checkpoint — up to <see cref="MaxStepPositions"/>, through each layer together
    /// (each chosen expert called once per layer with every position routed to it); else the one after the last
    /// generated token. Each position's attention and output are those of a step of its own, bit for bit.
    /// </summary>
    private async Task StepAsync()
    {
        var (model, cache, request) = (_model!, _cache!, _request!);
        var config = model.Config;
        var d = config.ModelDim;
        var first = cache.Length;
        var inputs = new List<int>();
        for (var position = first; inputs.Count < MaxStepPositions && position - (request.Prompt.Length - 1) < request.MaxTokens; position++)
        {
            var generated = position - request.Prompt.Length;
            int? token = position < request.Prompt.Length ? request.Prompt[position]
                : generated < _tokens.Count ? _tokens[generated]
                : generated < _delivered.Length ? _delivered[generated]
                : null;
            if (token is not { } known)
            {
                break;
            }

            inputs.Add(known);
        }

        var count = inputs.Count;
        var hidden = new float[count * d];
        for (var i = 0; i < count; i++)
        {
            model.Embed(inputs[i], hidden.AsSpan(i * d, d));
        }

        for (var layer = 0; layer < config.Layers; layer++)
        {
            if (Stopped)
            {
                // Told to stop (failed, aborted, closed) half way through the layers: no more expert calls for a step no
                // one will read. The cache counts a position once its last layer is written, so none is half kept.
                return;
            }

            var routed = new float[count * d];
            var routes = new ExpertRoute[count];
            for (var i = 0; i < count; i++)
            {
                model.Attend(layer, hidden.AsSpan(i * d, d), first + i, cache, routed.AsSpan(i * d, d));
                routes[i] = model.Route(layer, routed.AsSpan(i * d, d));
            }

            var outputs = await RunExpertsAsync(layer, routed, routes, d);
            for (var i = 0; i < count; i++)
            {
                MoeModel.Combine(hidden.AsSpan(i * d, d), routes[i], outputs[i]);
            }
        }

        for (var i = 0; i < count; i++)
        {
            var position = first + i;
            if (position < request.Prompt.Length - 1)
            {
                _outputs[position] = -1;
                continue;
            }

            var logits = new float[config.Vocabulary];
            model.Logits(hidden.AsSpan(i * d, d), logits);
            var next = _sampling!.Next(logits, position);
            if (_tokens.Count < _delivered.Length && _delivered[_tokens.Count] != next)
            {
                throw new InvalidOperationException(
                    $"Token {_tokens.Count} (position {position}) came out {next}, but the client had {_delivered[_tokens.Count]}: "
                    + "the generation is not reproducible.");
            }

            _outputs[position] = next;
            _tokens.Add(next);
            if (_meter!.Token(_tokens.Count, _router!.Replays) is { } second)
            {
                _ = _deployment!.ReportTokens(second);
            }
        }
    }

    /// <summary>
    /// Layer <paramref name="layer"/>'s experts for a step's positions: each chosen expert called once with the rows of
    /// every position routed to it; the answers per position, in its route's order.
    /// </summary>
    private async Task<float[][][]> RunExpertsAsync(int layer, float[] routed, ExpertRoute[] routes, int d)
    {
        var rowsOf = new Dictionary<int, List<int>>();
        for (var i = 0; i < routes.Length; i++)
        {
            foreach (var expert in routes[i].Experts)
            {
                (rowsOf.TryGetValue(expert, out var rows) ? rows : rowsOf[expert] = []).Add(i);
            }
        }

        var calls = new Dictionary<int, Task<float[]>>();
        foreach (var (expert, rows) in rowsOf)
        {
            var input = new float[rows.Count * d];
            for (var r = 0; r < rows.Count; r++)
            {
                routed.AsSpan(rows[r] * d, d).CopyTo(input.AsSpan(r * d, d));
            }

            calls[expert] = _router!.CallAsync(layer, expert, input, rows.Count);
        }

        await Task.WhenAll(calls.Values);
        return [.. routes.Select((route, i) => route.Experts.Select(e => calls[e].Result.AsSpan(rowsOf[e].IndexOf(i) * d, d).ToArray()).ToArray())];
    }

    /// <summary>What is wrong with the tokens a client says it has, or null.</summary>
    private static string? DeliveredProblem(GenerationRequest request, int[] delivered, int vocabulary) =>
        delivered.Length > request.MaxTokens ? $"{delivered.Length} tokens delivered of {request.MaxTokens} asked for"
        : Array.FindIndex(delivered, t => (uint)t >= (uint)vocabulary) is var bad and >= 0
            ? $"delivered token {delivered[bad]} (index {bad}) is not in the {vocabulary}-token vocabulary"
        : null;

    /// <summary>Takes the committed prefix of a checkpoint into the cache; returns the positions restored.</summary>
    private int Apply(GenerationRequest request, KvCheckpoint checkpoint)
    {
        if (checkpoint.Request is null || !checkpoint.Request.SameGeneration(request))
        {
            return 0;
        }

        var (cache, config) = (_cache!, _model!.Config);
        var (width, layers) = (config.ModelDim, config.Layers);
        if (checkpoint.Segments is not { } segments)
        {
            return 0;
        }

        if (segments.From != 0 || segments.Problem(layers * width) is not null || segments.Count > config.MaxSequence)
        {
            LogCheckpointDiscarded(logger, GrainId.Key, 0);
            return 0;
        }

        var restored = 0;
        for (var position = 0; position < segments.Count; position++)
        {
            var output = segments.Outputs[position];
            if ((position >= request.Prompt.Length - 1) != (output >= 0) || _tokens.Count >= request.MaxTokens)
            {
                LogCheckpointDiscarded(logger, GrainId.Key, position);
                break;
            }

            var keys = segments.Keys(position, layers * width);
            var values = segments.Values(position, layers * width);
            for (var layer = 0; layer < layers; layer++)
            {
                cache.Write(layer, position, keys.Slice(layer * width, width), values.Slice(layer * width, width));
            }

            _outputs[position] = output;
            if (output >= 0)
            {
                _tokens.Add(output);
            }

            restored++;
        }

        return restored;
    }

    /// <summary>
    /// Sends the positions the store has not committed, in one call, once the oldest of them waited about the spec's
    /// checkpoint interval (or a batch is full, or <paramref name="flush"/>), unless a send is still in flight:
    /// decoding never waits for the store.
    /// </summary>
    private void PumpCheckpoint(bool flush = false)
    {
        // A failed session is not resumed, a closed one's client has every token, and an aborted one was given up (a next
        // incarnation may have taken its checkpoint over and dropped it): nothing more is sent. A send after that would
        // find the checkpoint gone, begin it again, and the store would keep it until it went stale.
        if (_store is null || Stopped)
        {
            return;
        }

        if (_checkpointing is { IsCompleted: true } done)
        {
            if (done.IsCompletedSuccessfully)
            {
                _committed = Math.Max(_committed, done.Result);
                _storeBackoff.Succeeded();
                if (_restoredFrom is { } restored && _committed >= restored.Through)
                {
                    DropRestoredFrom();
                }
            }
            else if (done.Exception?.InnerException is KvCheckpointLostException)
            {
                // The store lost its state with its silo (it answers again, elsewhere): begin again and resend everything
                // from the cache.
                _storeLost = true;
                _committed = -1;
                _storeBackoff.Succeeded();
            }
            else
            {
                if (done.Exception?.InnerException is DataplaneException full && !_poolFailureLogged)
                {
                    // The node's pool could not give a batch its buffer (full): said once; the cache keeps every
                    // position, and the next tries are spaced out as below.
                    _poolFailureLogged = true;
                    LogCheckpointBufferUnavailable(logger, GrainId.Key, full.Message);
                }

                // The store's silo is unreachable (dead, until the cluster says so and the store moves): every send
                // until then would fail the same way, and each costs this silo a directory lookup and a membership
                // read. Try again later, less often the longer it lasts; the cache keeps every position meanwhile.
                _storeBackoff.Failed();
            }

            _checkpointing = null;
        }

        var unsent = _cache!.Length - 1 - _committed;
        if (unsent <= 0)
        {
            _unsentSince = 0;
            return;
        }

        if (_unsentSince == 0)
        {
            _unsentSince = time.GetTimestamp();
            _sendAfter = DrawSendAge();
        }

        if (_checkpointing is null && (flush || _storeBackoff.Ready)
            && (flush || unsent >= _spec!.CheckpointBatch || time.GetElapsedTime(_unsentSince) >= _sendAfter))
        {
            _checkpointing = AppendAsync(_storeLost);
            _storeLost = false;
            _unsentSince = time.GetTimestamp();
            _sendAfter = DrawSendAge();
        }
    }

    /// <summary>
    /// The age at which the next batch goes by time: the spec's interval, spread over half to one and a half times it,
    /// so that sessions that started together (a burst of requests) do not send together for the rest of their lives.
    /// </summary>
    private TimeSpan DrawSendAge() => _spec!.CheckpointInterval * (0.5 + Random.Shared.NextDouble());

    /// <summary>
    /// Sends the uncommitted positions (taken now, while every layer of each is written: decoding goes on meanwhile),
    /// beginning the checkpoint again first when the store lost it.
    /// </summary>
    private async Task<int> AppendAsync(bool begin)
    {
        // Written straight from the cache into the node's pool: the store keeps these bytes (its own reference to them),
        // and this session's reference goes once the store has answered.
        using var segments = Segments(_committed + 1, Math.Min(_cache!.Length - 1, _committed + _spec!.CheckpointBatch));
        if (begin)
        {
            _storeSilo = await _store!.Begin(_request!, _model!.Config.Layers, _model.Config.ModelDim);
        }

        return await _store!.Append(_request!.RequestId, segments);
    }

    /// <summary>The checkpoint a next incarnation would restore from (no checkpointing: none), and its store's silo if known.</summary>
    private (string? Key, string? Silo) ResumeFrom => _restoredFrom is { } restored ? (restored.Key, restored.Silo) : (_storeKey, _storeSilo);

    /// <summary>This session's own store holds what it restored (or the request ends): the store it restored from lets go of it.</summary>
    private void DropRestoredFrom()
    {
        if (_restoredFrom is { } restored)
        {
            _restoredFrom = null;
            DropFrom(restored.Store);
        }
    }

    /// <summary>Tells <paramref name="store"/> to forget the request, not waiting for it (its silo may be gone).</summary>
    private void DropFrom(IKvCheckpointStoreGrain store) =>
        store.Drop(_request!.RequestId).ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);

    /// <summary>Positions <paramref name="from"/> .. <paramref name="through"/> of the cache (every layer of each written) in a new batch.</summary>
    private KvSegments Segments(int from, int through)
    {
        var (cache, config) = (_cache!, _model!.Config);
        var (width, layers) = (config.ModelDim, config.Layers);
        var segments = KvSegments.Rent(_pool!, from, through - from + 1, layers * width);
        for (var index = 0; index < segments.Count; index++)
        {
            var position = from + index;
            var keys = segments.Keys(index, layers * width);
            var values = segments.Values(index, layers * width);
            for (var layer = 0; layer < layers; layer++)
            {
                cache.Keys(layer, position + 1).Slice(position * width, width).CopyTo(keys.Slice(layer * width, width));
                cache.Values(layer, position + 1).Slice(position * width, width).CopyTo(values.Slice(layer * width, width));
            }

            segments.Outputs[index] = _outputs[position];
        }

        return segments;
    }

    private async Task FlushCheckpointAsync()
    {
        for (var attempt = 0; attempt < 8 && _store is not null && _committed < _cache!.Length - 1 && !Stopped; attempt++)
        {
            if (_checkpointing is { } inflight)
            {
                await Task.WhenAny(inflight);
            }

            PumpCheckpoint(flush: true);
        }
    }

    private void OnExpertFailure(ExpertReplica replica, Exception error)
    {
        LogExpertFailed(logger, GrainId.Key, replica.Key, error.Message);
        _ = _deployment?.ReportExpertFailure(replica, GrainId.Key, error.Message);
    }

    private void Signal()
    {
        var previous = _changed;
        _changed = NewSignal();
        previous.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    [LoggerMessage(EventId = 7101, Level = LogLevel.Information, Message = "Session {Session} opened on {Silo}: {Positions} positions and {Tokens} tokens restored")]
    private static partial void LogOpened(ILogger logger, string session, string silo, int positions, int tokens);

    [LoggerMessage(EventId = 7102, Level = LogLevel.Warning, Message = "Session {Session} failed")]
    private static partial void LogFailed(ILogger logger, Exception error, string session);

    [LoggerMessage(EventId = 7103, Level = LogLevel.Warning, Message = "Session {Session}: expert replica {Replica} failed ({Reason}); replayed elsewhere")]
    private static partial void LogExpertFailed(ILogger logger, string session, string replica, string reason);

    [LoggerMessage(EventId = 7104, Level = LogLevel.Information, Message = "Session {Session} took routing table version {Version}")]
    private static partial void LogRoutesUpdated(ILogger logger, string session, long version);

    [LoggerMessage(EventId = 7105, Level = LogLevel.Information, Message = "Session {Session} aborted: {Reason}")]
    private static partial void LogAborted(ILogger logger, string session, string reason);

    [LoggerMessage(EventId = 7106, Level = LogLevel.Warning, Message = "Session {Session} stops for the deployment's restart: {Reason}")]
    private static partial void LogAbortedByFailure(ILogger logger, string session, string reason);

    [LoggerMessage(EventId = 7107, Level = LogLevel.Warning, Message = "Session {Session}: the checkpoint is inconsistent at position {Position}; restored up to it")]
    private static partial void LogCheckpointDiscarded(ILogger logger, string session, int position);

    [LoggerMessage(EventId = 7108, Level = LogLevel.Information, Message = "Session {Session} stopped: {Reason}")]
    private static partial void LogStopped(ILogger logger, string session, string reason);

    [LoggerMessage(EventId = 7109, Level = LogLevel.Warning, Message = "Session {Session}: no buffer for a KV checkpoint batch in the node's shared pool ({Reason}); retrying later")]
    private static partial void LogCheckpointBufferUnavailable(ILogger logger, string session, string reason);
}
