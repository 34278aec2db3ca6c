using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Orleans.LIFL.Configuration;
using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Metadata;
using Orleans.LIFL.Runtime.Dataplane;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Networking;

/// <summary>What a connection reports to the runtime that owns it (a silo's connection manager or a client).</summary>
internal interface IConnectionOwner
{
    SerializerSession Session { get; }

    TimeProvider Time { get; }

    /// <summary>How shared buffers cross the link to <paramref name="peer"/>; null when they cannot.</summary>
    Dataplane.IFrameBufferChannel? CreateBufferChannel(PeerIdentity peer);

    /// <summary>Whether callers' continuations run on the thread pool instead of the connection's reader.</summary>
    bool CompleteCallsAsynchronously { get; }

    /// <summary>A request arrived; the connection is its response sink.</summary>
    void OnRequest(Connection connection, RequestBase request);

    /// <summary>A ping, pong, cluster view, manifest or membership notice arrived.</summary>
    void OnControlFrame(Connection connection, FrameKind kind, ref Reader payload);

    void OnClosed(Connection connection, Exception reason);
}

/// <summary>Writes the payload of a control frame.</summary>
internal delegate void PayloadWriter<TState>(ref Writer writer, TState state);

/// <summary>
/// One authenticated TCP connection. Requests, responses and control frames are queued by any thread and written
/// by one loop that packs everything queued into a single send; one loop reads frames and dispatches them.
/// Calls sent here wait in a table until their response arrives; if the connection drops they all fail at once.
/// </summary>
internal sealed partial class Connection : IResponseSink
{
    private const int SendBatchBytes = 256 * 1024;
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly IConnectionOwner _owner;
    private readonly Dataplane.IFrameBufferChannel? _buffers;
    private readonly SerializerSession _session;
    private readonly ConnectionOptions _options;
    private readonly ILogger _logger;
    private readonly Channel<object> _outgoing = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Probes and their answers: written before anything else queued, so that a backlog of large messages
    /// does not make a busy but healthy peer look dead to the failure detector.</summary>
    private readonly ConcurrentQueue<object> _urgent = new();
    private readonly ConcurrentDictionary<long, RequestBase> _pending = new();
    private readonly TaskCompletionSource<Exception> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private CompletionBatch? _batch;
    private long _lastFrameTimestamp;
    private TaskCompletionSource? _resumeReading;
    private int _inFlight;
    private long _nextCorrelation;
    private int _queued;
    private int _closing;

    public Connection(Socket socket, Stream stream, PipeReader input, PeerIdentity peer, IConnectionOwner owner, ConnectionOptions options, ILogger logger)
    {
        _socket = socket;
        _stream = stream;
        _input = input;
        Peer = peer;
        _owner = owner;
        _options = options;
        _logger = logger;
        _buffers = owner.CreateBufferChannel(peer);
        _session = _buffers is null ? owner.Session : new SerializerSession(owner.Session.Runtime, _buffers);
    }

    public PeerIdentity Peer { get; }

    /// <summary>When the last whole frame from the peer was taken (the owner's clock), or 0 before the first.</summary>
    public long LastFrameTimestamp => Volatile.Read(ref _lastFrameTimestamp);

    /// <summary>Completes with the reason when the connection has closed.</summary>
    public Task<Exception> Closed => _closed.Task;

    public bool IsOpen => Volatile.Read(ref _closing) == 0;

    public int PendingCalls => _pending.Count;

    public void Start()
    {
        _ = RunAsync();
    }

    private async Task RunAsync()
    {
        var reading = ReadLoopAsync();
        var writing = WriteLoopAsync();
        var first = await Task.WhenAny(reading, writing).ConfigureAwait(false);
        var reason = first.Exception?.GetBaseException() ?? first.Result;
        Close(reason);
        await Task.WhenAll(reading, writing).ConfigureAwait(false);
        (_buffers as StreamingChannel)?.Close();
    }

    /// <summary>Queues a call to the peer; false if the connection is closed (the caller may try elsewhere).</summary>
    public bool TrySendRequest(RequestBase request)
    {
        if (!IsOpen)
        {
            return false;
        }

        if (Interlocked.Increment(ref _queued) > _options.MaxQueuedMessages)
        {
            Interlocked.Decrement(ref _queued);
            request.Fail(new LiflException($"{_options.MaxQueuedMessages} messages are queued for {Peer.Role} {Peer.Id}: it is not keeping up; call refused."));
            return true;
        }

        if (!request.Method.IsOneWay)
        {
            var correlation = Interlocked.Increment(ref _nextCorrelation);
            request.OutgoingCorrelationId = correlation;
            _pending[correlation] = request;
        }

        if (!_outgoing.Writer.TryWrite(request))
        {
            Interlocked.Decrement(ref _queued);
            _pending.TryRemove(request.OutgoingCorrelationId, out _);
            return false;
        }

        return true;
    }

    /// <summary>Queues a control frame.</summary>
    public bool TrySendControl<TState>(FrameKind kind, TState state, PayloadWriter<TState> payload)
    {
        if (!IsOpen)
        {
            return false;
        }

        var frame = new ControlFrame<TState>(kind, state, payload);
        if (kind is not (FrameKind.Ping or FrameKind.Pong))
        {
            return _outgoing.Writer.TryWrite(frame);
        }

        _urgent.Enqueue(frame);
        return _outgoing.Writer.TryWrite(UrgentQueued.Instance);
    }

    void IResponseSink.OnResult<T>(Request<T> request, T result, bool resultIsPrivate)
    {
        if (request.IncomingCorrelationId == 0)
        {
            return;
        }

        T value;
        List<SharedBuffer>? buffers;
        if (resultIsPrivate)
        {
            // Read from the wire just now (a relayed result): the references it took are this frame's.
            value = result;
            buffers = BufferCapture.TakeCaptured();
        }
        else
        {
            var outerCapture = BufferCapture.Begin();
            try
            {
                // The callee may change what it returned once its turn ends; the response is written later.
                value = DeepCopier<T>.Copy(result);
            }
            catch (Exception error)
            {
                BufferCapture.DisposeAll(BufferCapture.End(outerCapture));
                ((IResponseSink)this).OnError(request, error);
                return;
            }

            buffers = BufferCapture.End(outerCapture);
        }

        var frame = new ResultFrame<T>(request.IncomingCorrelationId, value) { Buffers = buffers };
        if (!_outgoing.Writer.TryWrite(frame))
        {
            frame.ReleaseBuffers();
        }

        OnAnswered(request);
    }

    /// <summary>When too many requests of this connection are unanswered, the task to wait on before reading more.</summary>
    private Task? PauseReading()
    {
        if (Volatile.Read(ref _inFlight) < _options.MaxInFlightRequests)
        {
            return null;
        }

        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _resumeReading, resume);

        // Answers may have drained the backlog (or the connection closed) before they could see the pause:
        // publishing it above is a full fence, so either they see it or this sees their count.
        if (Volatile.Read(ref _inFlight) <= _options.MaxInFlightRequests / 2 || !IsOpen)
        {
            Interlocked.CompareExchange(ref _resumeReading, null, resume);
            return null;
        }

        LogPaused(_logger, Peer.Role, Peer.Id, _options.MaxInFlightRequests);
        return resume.Task;
    }

    private void OnAnswered(RequestBase request)
    {
        if (request.HeldTransferPlaces > 0 && _buffers is StreamingChannel streaming)
        {
            streaming.Release(request.HeldTransferPlaces);
            request.HeldTransferPlaces = 0;
        }

        var remaining = Interlocked.Decrement(ref _inFlight);
        if (remaining <= _options.MaxInFlightRequests / 2 && Volatile.Read(ref _resumeReading) is not null)
        {
            Interlocked.Exchange(ref _resumeReading, null)?.TrySetResult();
        }
    }

    void IResponseSink.OnError(RequestBase request, Exception error)
    {
        if (request.IncomingCorrelationId != 0)
        {
            _outgoing.Writer.TryWrite(new ErrorFrame(request.IncomingCorrelationId, error));
            OnAnswered(request);
        }
    }

    /// <summary>Fails the calls sent here whose caller has given up.</summary>
    public void FailExpiredCalls(long now)
    {
        foreach (var (correlation, request) in _pending)
        {
            if (request.IsExpired(now) && _pending.TryRemove(correlation, out _))
            {
                var timeout = Messaging.CallTimeouts.ToTimeSpan(_owner.Time, request.DeadlineTimestamp - request.SentTimestamp);
                request.Fail(new GrainCallTimeoutException(
                    $"Response did not arrive on time in {timeout} for {request.Method.FullName} to {request.TargetId}: it was sent to {Peer.Role} {Peer.Id}."));
            }
        }
    }

    /// <summary>Closes the connection; every call still waiting for a response here fails with <paramref name="reason"/>.</summary>
    public void Close(Exception reason)
    {
        if (Interlocked.Exchange(ref _closing, 1) != 0)
        {
            return;
        }

        _outgoing.Writer.TryComplete();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception error) when (error is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }

        _socket.Dispose();
        var failure = new SiloUnavailableException($"Connection to {Peer.Role.ToString().ToLowerInvariant()} {Peer.Id} lost ({reason.Message}).");
        // Each caller learns of the loss on the thread pool, all at once: failed here in turn, the first caller's
        // continuation (which typically reconnects and calls again) ran before the next caller heard anything.
        foreach (var correlation in _pending.Keys)
        {
            if (_pending.TryRemove(correlation, out var request))
            {
                ThreadPool.UnsafeQueueUserWorkItem(static s => s.request.Fail(s.failure), (request, failure), preferLocal: false);
            }
        }

        while (_outgoing.Reader.TryRead(out var item))
        {
            (item as ResultFrame)?.ReleaseBuffers();
            if (item is RequestBase { Method.IsOneWay: true } oneWay)
            {
                oneWay.Fail(failure);
            }
        }

        _closed.TrySetResult(reason);
        Interlocked.Exchange(ref _resumeReading, null)?.TrySetResult();
        _owner.OnClosed(this, reason);
    }

    private async Task<Exception> WriteLoopAsync()
    {
        var buffer = new FrameBuffer();
        var reader = _outgoing.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (buffer.Length < SendBatchBytes && reader.TryRead(out var item))
                {
                    while (_urgent.TryDequeue(out var urgent))
                    {
                        WriteItem(buffer, urgent);
                    }

                    if (item is UrgentQueued)
                    {
                        continue;
                    }

                    if (item is RequestBase)
                    {
                        Interlocked.Decrement(ref _queued);
                    }

                    var frameStart = buffer.Length;
                    WriteItem(buffer, item);
                    if (_buffers is StreamingChannel { HasSends: true } streaming)
                    {
                        // The message names buffers streamed to another node: their bytes go ahead of it.
                        var message = buffer.TakeFrom(frameStart);
                        await _stream.WriteAsync(buffer.Written).ConfigureAwait(false);
                        buffer.Reset();
                        foreach (var (transfer, shared) in streaming.TakeSends())
                        {
                            using (shared)
                            {
                                await streaming.StreamAsync(_stream, transfer, shared, CancellationToken.None).ConfigureAwait(false);
                            }
                        }

                        await _stream.WriteAsync(message).ConfigureAwait(false);
                    }
                }

                if (buffer.Length > 0)
                {
                    await _stream.WriteAsync(buffer.Written).ConfigureAwait(false);
                    buffer.Reset();
                }
            }

            return new ConnectionClosedException("closed by this side");
        }
        catch (Exception error) when (error is IOException or SocketException or ObjectDisposedException)
        {
            return error;
        }
    }

    private void WriteItem(FrameBuffer buffer, object item)
    {
        switch (item)
        {
            case RequestBase request:
                WriteRequest(buffer, request);
                break;
            case OutgoingFrame frame:
                try
                {
                    WriteFrame(buffer, frame, item);
                }
                finally
                {
                    // The peer has its own references now (or the frame died): the frame's are done.
                    (frame as ResultFrame)?.ReleaseBuffers();
                }

                break;
        }
    }

    private void WriteFrame(FrameBuffer buffer, OutgoingFrame frame, object item)
    {
        buffer.BeginFrame(frame.Kind);
        try
        {
            var writer = new Writer(buffer, _session);
            frame.Write(ref writer);
            writer.Commit();
        }
        catch (Exception error)
        {
            _buffers?.AbandonFrame();
            buffer.AbandonFrame();
            if (frame is ResultFrame result && item is not ErrorFrame)
            {
                // The result could not be serialized: the caller gets that error instead.
                _outgoing.Writer.TryWrite(new ErrorFrame(result.Correlation, error));
            }
            else
            {
                LogFrameFailed(_logger, error, frame.Kind, Peer.Id);
            }

            return;
        }

        if (!buffer.EndFrame(_options.MaxFrameBytes))
        {
            _buffers?.AbandonFrame();
            if (frame is ResultFrame tooLarge)
            {
                _outgoing.Writer.TryWrite(new ErrorFrame(tooLarge.Correlation, new LiflException($"The result is larger than the {_options.MaxFrameBytes}-byte frame limit.")));
            }

            return;
        }

        _buffers?.CommitFrame();
    }

    private void WriteRequest(FrameBuffer buffer, RequestBase request)
    {
        if (request.IsCompleted)
        {
            // Timed out (or failed) while queued: do not send it.
            _pending.TryRemove(request.OutgoingCorrelationId, out _);
            return;
        }

        buffer.BeginFrame(FrameKind.Request);
        try
        {
            var writer = new Writer(buffer, _session);
            RequestHeader.Write(ref writer, request, request.Method.IsOneWay ? 0 : request.OutgoingCorrelationId, _owner.Time);
            request.WriteArguments(ref writer);
            writer.Commit();
        }
        catch (Exception error)
        {
            _buffers?.AbandonFrame();
            buffer.AbandonFrame();
            _pending.TryRemove(request.OutgoingCorrelationId, out _);
            request.Fail(error);
            return;
        }

        if (!buffer.EndFrame(_options.MaxFrameBytes))
        {
            _buffers?.AbandonFrame();
            _pending.TryRemove(request.OutgoingCorrelationId, out _);
            request.Fail(new LiflException($"The arguments of {request.Method.FullName} are larger than the {_options.MaxFrameBytes}-byte frame limit."));
            return;
        }

        _buffers?.CommitFrame();
        if (request.Method.IsOneWay)
        {
            // Nothing will answer a one-way call: its buffers are the peer's as soon as the frame is complete.
            request.ReleaseBuffers();
        }
    }

    private async Task<Exception> ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                if (PauseReading() is { } resume)
                {
                    await resume.ConfigureAwait(false);
                }

                var result = await _input.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                var full = false;
                Task? admitted = null;
                var dispatched = false;
                try
                {
                    while (!full)
                    {
                        if (WaitForAdmission(buffer) is { } room)
                        {
                            // No room for another incoming transfer: this frame waits, unread, and so does the peer.
                            admitted = room;
                            full = true;
                            break;
                        }

                        if (!FrameReader.TryRead(ref buffer, _options.MaxFrameBytes, out var frame))
                        {
                            break;
                        }

                        Dispatch(frame);
                        dispatched = true;
                        full = Volatile.Read(ref _inFlight) >= _options.MaxInFlightRequests;
                    }
                }
                finally
                {
                    // Once per read, not per frame: the failure detector only asks whether the peer spoke lately.
                    if (dispatched)
                    {
                        Volatile.Write(ref _lastFrameTimestamp, _owner.Time.GetTimestamp());
                    }

                    // Stopped at a limit: the frames left are not examined, so the next read returns them at once.
                    if (full)
                    {
                        _input.AdvanceTo(buffer.Start);
                    }
                    else
                    {
                        _input.AdvanceTo(buffer.Start, buffer.End);
                    }

                    if (_batch?.TrySchedule() == true)
                    {
                        _batch = null;
                    }
                }

                if (result.IsCompleted && !full)
                {
                    return new ConnectionClosedException("closed by the peer");
                }

                if (admitted is not null)
                {
                    await admitted.ConfigureAwait(false);
                }
            }
        }
        catch (ProtocolException error)
        {
            LogProtocolViolation(_logger, Peer.Role, Peer.Id, error.Message);
            return error;
        }
        catch (Exception error) when (error is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            return error;
        }
    }

    /// <summary>
    /// For a chunk frame at the front of <paramref name="buffer"/> (all of it, or only its start) that begins a transfer
    /// with no admission place: a task that completes when there may be room; otherwise null. Its header decides, not its
    /// last byte, so a transfer that must wait holds a read's worth here, not a whole chunk.
    /// </summary>
    private Task? WaitForAdmission(in ReadOnlySequence<byte> buffer)
    {
        if (buffer.Length <= 5 || _buffers is not StreamingChannel streaming || buffer.Slice(4, 1).FirstSpan[0] != (byte)FrameKind.BufferChunk)
        {
            return null;
        }

        // A bad length is FrameReader's to refuse.
        var length = FrameReader.ReadLength(buffer);
        if (length < 1 || length > _options.MaxFrameBytes)
        {
            return null;
        }

        return streaming.MayReadOn(buffer.Slice(5, Math.Min(buffer.Length - 5, length - 1))) ? null : streaming.WhenAdmissibleAsync();
    }

    private void Dispatch(in ReadOnlySequence<byte> frame)
    {
        if (frame.FirstSpan[0] == (byte)FrameKind.BufferChunk)
        {
            // Straight from the pipe's segments into shared memory: no intermediate array however large the chunk.
            var streaming = _buffers as StreamingChannel ?? throw new ProtocolException("a buffer chunk on a link that does not stream buffers");
            try
            {
                streaming.ReceiveChunk(frame.Slice(1));
            }
            catch (Exception error) when (error is SerializationException or DataplaneException)
            {
                throw new ProtocolException($"a bad buffer chunk: {error.Message}");
            }

            return;
        }

        if (frame.IsSingleSegment)
        {
            Dispatch(frame.FirstSpan);
            return;
        }

        var length = (int)frame.Length;
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            frame.CopyTo(rented);
            Dispatch(rented.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private void Dispatch(ReadOnlySpan<byte> frame)
    {
        var kind = (FrameKind)frame[0];
        var reader = new Reader(frame[1..], _session);
        try
        {
            switch (kind)
            {
                case FrameKind.Request:
                    ReceiveRequest(ref reader);
                    break;
                case FrameKind.Response:
                    ReceiveResponse(ref reader);
                    break;
                case FrameKind.Ping or FrameKind.Pong or FrameKind.ClusterView or FrameKind.MembershipChanged or FrameKind.Manifest:
                    _owner.OnControlFrame(this, kind, ref reader);
                    break;
                default:
                    throw new ProtocolException($"unknown frame kind {(byte)kind}");
            }
        }
        catch (SerializationException error)
        {
            throw new ProtocolException($"a malformed {kind} frame: {error.Message}");
        }
        finally
        {
            // Places the frame's transfers hold and no request took over (a response's, a refused call's).
            if (_buffers is StreamingChannel { HoldUntilAnswered: true } streaming)
            {
                streaming.Release(streaming.TakeNamed());
            }
        }
    }

    private void ReceiveRequest(ref Reader reader)
    {
        var header = RequestHeader.Read(ref reader);
        var request = GeneratedCodeRegistry.CreateRequest(header.MethodWireId);
        if (request is null)
        {
            Refuse(header.Correlation, new GrainTypeResolutionException(
                $"No grain method with wire id {header.MethodWireId} is known here (call to {header.Target}); the grain interface's assembly is not deployed on this silo."));
            return;
        }

        var outerCapture = BufferCapture.Begin();
        try
        {
            request.ReadArguments(ref reader);
        }
        catch (Exception error) when (error is SerializationException or CodecNotFoundException)
        {
            BufferCapture.DisposeAll(BufferCapture.End(outerCapture));
            LogBadArguments(_logger, request.Method.FullName, Peer.Id, error.Message);
            Refuse(header.Correlation, error);
            return;
        }
        catch
        {
            BufferCapture.DisposeAll(BufferCapture.End(outerCapture));
            throw;
        }

        // The references the arguments' buffers took are the request's until it is invoked (or forwarded and done).
        request.AdoptBuffers(BufferCapture.End(outerCapture));

        header.ApplyTo(request, _owner.Time);
        if (header.Correlation != 0)
        {
            // Kept until the call is answered: see StreamingChannel.HoldUntilAnswered.
            request.HeldTransferPlaces = (_buffers as StreamingChannel)?.TakeNamed() ?? 0;
            request.IncomingCorrelationId = header.Correlation;
            request.ResponseSink = this;
            Interlocked.Increment(ref _inFlight);
        }

        _owner.OnRequest(this, request);
    }

    private void Refuse(long correlation, Exception error)
    {
        if (correlation != 0)
        {
            _outgoing.Writer.TryWrite(new ErrorFrame(correlation, error));
        }
    }

    private void ReceiveResponse(ref Reader reader)
    {
        var correlation = (long)reader.ReadVarUInt64();
        var status = reader.ReadByte();
        if (!_pending.TryRemove(correlation, out var request))
        {
            // It timed out (or the connection's pending table was swept): the late answer has no taker.
            return;
        }

        var batch = _owner.CompleteCallsAsynchronously ? (_batch ??= new CompletionBatch()) : null;
        var outerCapture = BufferCapture.Begin();
        var completed = false;
        try
        {
            if (status == 0)
            {
                completed = request.CompleteFromWire(ref reader, batch);
                return;
            }

            Fail(request, Codec<Exception>.ReadField(ref reader), batch);
        }
        catch (Exception error) when (error is SerializationException or CodecNotFoundException)
        {
            Fail(request, error, batch);
        }
        finally
        {
            // A result's buffers belong to its caller (a relayed result took its own above); a failed read's are nobody's.
            var captured = BufferCapture.End(outerCapture);
            if (!completed)
            {
                BufferCapture.DisposeAll(captured);
            }
        }
    }

    private static void Fail(RequestBase request, Exception error, CompletionBatch? batch)
    {
        if (batch is null || request.ResponseSink is not null)
        {
            request.Fail(error);
            return;
        }

        if (request.StageError(error))
        {
            batch.Add(request);
        }
    }

    [LoggerMessage(EventId = 5001, Level = LogLevel.Warning, Message = "Dropping the connection of {Role} {Peer}: {Violation}")]
    private static partial void LogProtocolViolation(ILogger logger, PeerRole role, string peer, string violation);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Warning, Message = "Refused a call to {Method} from {Peer}: its arguments could not be read ({Reason})")]
    private static partial void LogBadArguments(ILogger logger, string method, string peer, string reason);

    [LoggerMessage(EventId = 5004, Level = LogLevel.Warning, Message = "{Role} {Peer} has {InFlight} requests unanswered: reading from it paused until half are answered")]
    private static partial void LogPaused(ILogger logger, PeerRole role, string peer, int inFlight);

    [LoggerMessage(EventId = 5003, Level = LogLevel.Warning, Message = "Could not write a {Kind} frame to {Peer}")]
    private static partial void LogFrameFailed(ILogger logger, Exception error, FrameKind kind, string peer);

    private abstract class OutgoingFrame(FrameKind kind)
    {
        public FrameKind Kind { get; } = kind;

        public abstract void Write(ref Writer writer);
    }

    private abstract class ResultFrame(long correlation) : OutgoingFrame(FrameKind.Response)
    {
        public long Correlation { get; } = correlation;

        /// <summary>The shared-buffer references the result holds for the peer: dropped once the frame is written.</summary>
        public List<SharedBuffer>? Buffers { get; init; }

        public void ReleaseBuffers() => BufferCapture.DisposeAll(Buffers);
    }

    private sealed class ResultFrame<T>(long correlation, T value) : ResultFrame(correlation)
    {
        public override void Write(ref Writer writer)
        {
            writer.WriteVarUInt64((ulong)Correlation);
            writer.WriteByte(0);
            Request<T>.WriteResult(ref writer, value);
        }
    }

    private sealed class ErrorFrame(long correlation, Exception error) : ResultFrame(correlation)
    {
        public override void Write(ref Writer writer)
        {
            writer.WriteVarUInt64((ulong)Correlation);
            writer.WriteByte(1);
            Codec<Exception>.WriteField(ref writer, 0, error);
        }
    }

    /// <summary>Wakes the write loop for a frame in the urgent queue.</summary>
    private sealed class UrgentQueued
    {
        public static readonly UrgentQueued Instance = new();
    }

    private sealed class ControlFrame<TState>(FrameKind kind, TState state, PayloadWriter<TState> payload) : OutgoingFrame(kind)
    {
        public override void Write(ref Writer writer) => payload(ref writer, state);
    }
}

/// <summary>The connection ended normally (one side closed it).</summary>
internal sealed class ConnectionClosedException(string message) : Exception(message);
