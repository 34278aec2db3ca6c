using System.Buffers;
using System.Runtime.InteropServices;

namespace Orleans.LIFL.Dataplane;

/// <summary>
/// One reference to a buffer in the node's shared pool, read and written through spans over the shared memory
/// (the garbage collector never sees the bytes). Dispose it when done; the buffer is freed when the last
/// reference of any process goes. A handle that is garbage-collected undisposed is counted as leaked and released.
/// </summary>
/// <remarks>
/// Passed to a grain call or returned from one, the receiver gets its own reference (its own handle, which it must
/// dispose); the sender keeps its own. Within a silo that is another handle on the same bytes; to a silo of the same
/// node a descriptor, the bytes staying put; to another node the bytes are streamed into that node's pool.
/// </remarks>
public sealed unsafe class SharedBuffer : IDisposable
{
    private readonly BufferDescriptor _descriptor;
    private int _disposed;
    private int _moving;

    internal SharedBuffer(SharedBufferPool pool, BufferDescriptor descriptor)
    {
        Pool = pool;
        _descriptor = descriptor;
        pool.OnHandleCreated();
        BufferCapture.OnCreated(this);
    }

    ~SharedBuffer()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Pool.OnHandleLeaked(_descriptor);
        }
    }

    public SharedBufferPool Pool { get; }

    public BufferDescriptor Descriptor => _descriptor;

    public int Length => (int)_descriptor.Length;

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>The bytes, in shared memory.</summary>
    public Span<byte> Span
    {
        get
        {
            ThrowIfDisposed();
            return new Span<byte>(Pool.Data + _descriptor.Offset, Length);
        }
    }

    /// <summary>Maps the bytes into this process now, in one call (see <see cref="SharedBufferPool.Prefault"/>).</summary>
    public void Prefault(bool forWrite)
    {
        ThrowIfDisposed();
        Pool.Prefault(_descriptor, forWrite);
    }

    /// <summary>The bytes as values of <typeparamref name="T"/> (a trailing partial element is left out).</summary>
    public Span<T> AsSpan<T>()
        where T : unmanaged => MemoryMarshal.Cast<byte, T>(Span);

    /// <summary>A <see cref="Memory{T}"/> over the bytes, for APIs that take one (streams, pipes); valid while this handle is.</summary>
    public Memory<T> AsMemory<T>()
        where T : unmanaged
    {
        ThrowIfDisposed();
        return new SharedMemoryManager<T>(this).Memory;
    }

    /// <summary>
    /// Hands this handle over with the result (or argument) it is returned in: the runtime gives this very reference
    /// to the receiver instead of taking another one, so a grain can return a buffer it does not keep. Do not use or
    /// dispose the handle afterwards.
    /// </summary>
    public SharedBuffer MoveToCaller()
    {
        ThrowIfDisposed();
        Volatile.Write(ref _moving, 1);
        return this;
    }

    /// <summary>The runtime's copy of this handle for a receiver: this very handle if it is being moved, else a new reference.</summary>
    internal SharedBuffer CopyForReceiver()
    {
        if (Interlocked.Exchange(ref _moving, 0) == 1)
        {
            // Now owned by whoever collects the copies of this message, as a new handle would be.
            BufferCapture.OnCreated(this);
            return this;
        }

        return Share();
    }

    /// <summary>Another reference to the same bytes, with its own handle to dispose.</summary>
    public SharedBuffer Share()
    {
        ThrowIfDisposed();
        Pool.AddRef(_descriptor);
        return new SharedBuffer(Pool, _descriptor);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            GC.SuppressFinalize(this);
            Pool.OnHandleReleased();
            Pool.Release(_descriptor);
        }
    }

    public override string ToString() => $"{_descriptor} in pool {Pool.Name}";

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    /// <summary>Memory over shared memory: pinning is a no-op, the bytes never move.</summary>
    private sealed class SharedMemoryManager<T>(SharedBuffer owner) : MemoryManager<T>
        where T : unmanaged
    {
        private readonly int _length = owner.Length / sizeof(T);

        public override Span<T> GetSpan() => owner.AsSpan<T>();

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(elementIndex);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(elementIndex, _length);
            return new MemoryHandle((T*)(owner.Pool.Data + owner.Descriptor.Offset) + elementIndex);
        }

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}

/// <summary>
/// Collects the handles created on this thread while active: the runtime uses it to learn which references a
/// message's copy or deserialization created, so it can hand them over or drop them when the message is done.
/// </summary>
public static class BufferCapture
{
    [ThreadStatic]
#pragma warning disable IDE1006 // [ThreadStatic] fields are t_camelCase (dotnet/runtime convention)
    private static List<SharedBuffer>? t_captured;
#pragma warning restore IDE1006

    /// <summary>Starts collecting; returns what was being collected before (restore it with <see cref="End"/>).</summary>
    public static List<SharedBuffer>? Begin()
    {
        var previous = t_captured;
        t_captured = null;
        t_active++;
        return previous;
    }

    /// <summary>Stops collecting; returns the handles created since <see cref="Begin"/> (null when none).</summary>
    public static List<SharedBuffer>? End(List<SharedBuffer>? previous)
    {
        var captured = t_captured;
        t_captured = previous;
        t_active--;
        return captured;
    }

    /// <summary>Takes what was collected so far while collecting goes on (null when none).</summary>
    public static List<SharedBuffer>? TakeCaptured()
    {
        var captured = t_captured;
        t_captured = null;
        return captured;
    }

    [ThreadStatic]
#pragma warning disable IDE1006
    private static int t_active;
#pragma warning restore IDE1006

    internal static void OnCreated(SharedBuffer buffer)
    {
        if (t_active > 0)
        {
            (t_captured ??= []).Add(buffer);
        }
    }

    /// <summary>Disposes the handles of a finished message.</summary>
    public static void DisposeAll(List<SharedBuffer>? buffers)
    {
        if (buffers is null)
        {
            return;
        }

        foreach (var buffer in buffers)
        {
            buffer.Dispose();
        }
    }
}
