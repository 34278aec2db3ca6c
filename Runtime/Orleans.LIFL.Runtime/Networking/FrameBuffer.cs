using System.Buffers;
using System.Buffers.Binary;

namespace Orleans.LIFL.Runtime.Networking;

/// <summary>
/// A growable contiguous buffer that frames are written into back to back, each length patched in after its body,
/// then sent with one socket call. Reused for the life of a connection.
/// </summary>
internal sealed class FrameBuffer : IBufferWriter<byte>
{
    private byte[] _buffer;
    private int _written;
    private int _frameStart = -1;

    public FrameBuffer(int initialSize = 64 * 1024)
    {
        _buffer = new byte[initialSize];
    }

    public int Length => _written;

    public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, _written);

    /// <summary>Starts a frame: reserves its length prefix and writes its kind.</summary>
    public void BeginFrame(FrameKind kind)
    {
        EnsureCapacity(5);
        _frameStart = _written;
        _written += 4;
        _buffer[_written++] = (byte)kind;
    }

    /// <summary>Ends the frame begun last, filling in its length; false (and the frame dropped) if it is too large.</summary>
    public bool EndFrame(int maxFrameBytes)
    {
        var length = _written - _frameStart - 4;
        if (length > maxFrameBytes)
        {
            _written = _frameStart;
            _frameStart = -1;
            return false;
        }

        BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(_frameStart), length);
        _frameStart = -1;
        return true;
    }

    /// <summary>Drops a frame that failed half way (its body could not be serialized).</summary>
    public void AbandonFrame()
    {
        if (_frameStart >= 0)
        {
            _written = _frameStart;
            _frameStart = -1;
        }
    }

    /// <summary>Cuts off and returns everything from <paramref name="start"/> on (a frame that must wait).</summary>
    public byte[] TakeFrom(int start)
    {
        var taken = _buffer.AsSpan(start, _written - start).ToArray();
        _written = start;
        return taken;
    }

    public void Reset()
    {
        _written = 0;
        _frameStart = -1;
        if (_buffer.Length > 4 * 1024 * 1024)
        {
            // A very large frame went out: do not keep its buffer for the life of the connection.
            _buffer = new byte[64 * 1024];
        }
    }

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsMemory(_written);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        EnsureCapacity(sizeHint);
        return _buffer.AsSpan(_written);
    }

    private void EnsureCapacity(int sizeHint)
    {
        var needed = _written + Math.Max(sizeHint, 1);
        if (needed <= _buffer.Length)
        {
            return;
        }

        var size = Math.Max(needed, (int)Math.Min((long)_buffer.Length * 2, Array.MaxLength));
        Array.Resize(ref _buffer, size);
    }
}

/// <summary>What a frame carries (the byte after the length prefix).</summary>
internal enum FrameKind : byte
{
    Hello = 1,
    Challenge = 2,
    Proof = 3,
    Accepted = 4,
    Rejected = 5,
    Request = 10,
    Response = 11,

    /// <summary>A piece of a shared buffer streamed to another node, ahead of the message that names it.</summary>
    BufferChunk = 12,
    Ping = 20,
    Pong = 21,
    ClusterView = 30,
    MembershipChanged = 31,
    Manifest = 32,
}

/// <summary>The kind of peer at the other end of a connection.</summary>
internal enum PeerRole : byte
{
    Silo = 1,
    Client = 2,
}

/// <summary>A frame violated the protocol: the connection is dropped (the process is not harmed).</summary>
internal sealed class ProtocolException(string message) : Exception(message);
