using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Orleans.LIFL.Benchmarks.Calls;

namespace Orleans.LIFL.Benchmarks.ClusterCalls;

/// <summary>
/// The floor a networked call cannot beat on this machine: fixed-size request frames echoed by a bare TCP server over
/// loopback, many in flight on one connection as a gateway connection carries them, writes batched as ours are.
/// No routing, no serialization, no actors.
/// </summary>
internal sealed class TcpEchoBaseline : IAsyncDisposable
{
    private const int FrameBytes = 32;
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Socket _client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
    private readonly Dictionary<int, TaskCompletionSource<int>> _pending = [];
    private readonly Lock _lock = new();
    private readonly System.Threading.Channels.Channel<(int Id, int Value)> _outgoing =
        System.Threading.Channels.Channel.CreateUnbounded<(int Id, int Value)>(new() { SingleReader = true });
    private int _next;

    public async Task StartAsync()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        _ = ServeAsync();
        await _client.ConnectAsync(_listener.LocalEndPoint!);
        _ = ReceiveAsync();
        _ = SendLoopAsync();
    }

    private async Task SendLoopAsync()
    {
        var batch = new byte[256 * 1024];
        try
        {
            while (await _outgoing.Reader.WaitToReadAsync(_stopping.Token))
            {
                var length = 0;
                while (length + FrameBytes <= batch.Length && _outgoing.Reader.TryRead(out var request))
                {
                    BinaryPrimitives.WriteInt32LittleEndian(batch.AsSpan(length), FrameBytes - 4);
                    BinaryPrimitives.WriteInt32LittleEndian(batch.AsSpan(length + 4), request.Id);
                    BinaryPrimitives.WriteInt32LittleEndian(batch.AsSpan(length + 8), request.Value);
                    length += FrameBytes;
                }

                for (var sent = 0; sent < length;)
                {
                    sent += await _client.SendAsync(batch.AsMemory(sent, length - sent), _stopping.Token);
                }
            }
        }
        catch (Exception error) when (error is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeAsync()
    {
        using var socket = await _listener.AcceptAsync(_stopping.Token);
        socket.NoDelay = true;
        var buffer = new byte[64 * 1024];
        var filled = 0;
        try
        {
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(filled), _stopping.Token);
                if (read == 0)
                {
                    return;
                }

                filled += read;
                var whole = filled / FrameBytes * FrameBytes;
                for (var sent = 0; sent < whole;)
                {
                    sent += await socket.SendAsync(buffer.AsMemory(sent, whole - sent), _stopping.Token);
                }

                Buffer.BlockCopy(buffer, whole, buffer, 0, filled - whole);
                filled -= whole;
            }
        }
        catch (Exception error) when (error is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[64 * 1024];
        var filled = 0;
        try
        {
            while (true)
            {
                var read = await _client.ReceiveAsync(buffer.AsMemory(filled), _stopping.Token);
                if (read == 0)
                {
                    return;
                }

                filled += read;
                var offset = 0;
                for (; filled - offset >= FrameBytes; offset += FrameBytes)
                {
                    var id = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(offset + 4));
                    var value = BinaryPrimitives.ReadInt32LittleEndian(buffer.AsSpan(offset + 8));
                    TaskCompletionSource<int>? waiter;
                    lock (_lock)
                    {
                        _pending.Remove(id, out waiter);
                    }

                    waiter?.TrySetResult(value + 1);
                }

                Buffer.BlockCopy(buffer, offset, buffer, 0, filled - offset);
                filled -= offset;
            }
        }
        catch (Exception error) when (error is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>One echo round trip; the same shape as a grain call for <see cref="CallWorkload"/>.</summary>
    public async ValueTask<int> Echo(int target, int value)
    {
        var waiter = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        int id;
        lock (_lock)
        {
            id = ++_next;
            _pending[id] = waiter;
        }

        _outgoing.Writer.TryWrite((id, value));
        return await waiter.Task;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _client.Dispose();
        _listener.Dispose();
    }
}
