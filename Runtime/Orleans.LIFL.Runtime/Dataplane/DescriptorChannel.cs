using Orleans.LIFL.Dataplane;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Runtime.Dataplane;

/// <summary>
/// Shared buffers of a link whose two ends map the same pool on one node: only the descriptor crosses, and the
/// receiving process gets its own reference, taken on its behalf once the frame that carries the descriptor is
/// complete (so an abandoned frame gives nothing away).
/// </summary>
internal sealed class DescriptorChannel(SharedBufferPool pool, int peerSlot) : IFrameBufferChannel
{
    private const byte DescriptorMode = 1;

    // Serialization of one connection happens on its write loop only: no locking.
    private readonly List<(SharedBufferPool Giver, BufferDescriptor Descriptor)> _pendingGifts = [];

    public void Write(ref Writer writer, SharedBuffer buffer)
    {
        if (!ReferenceEquals(buffer.Pool, pool) && buffer.Pool.Name != pool.Name)
        {
            throw new SerializationException($"{buffer} belongs to pool {buffer.Pool.Name}; this link shares pool {pool.Name}.");
        }

        var descriptor = buffer.Descriptor;
        Codec<byte>.WriteField(ref writer, 0, DescriptorMode);
        Codec<ulong>.WriteField(ref writer, 1, descriptor.Offset);
        Codec<ulong>.WriteField(ref writer, 2, descriptor.Length);
        Codec<uint>.WriteField(ref writer, 3, descriptor.Record);
        Codec<uint>.WriteField(ref writer, 4, descriptor.Generation);
        writer.WriteEndTag();

        // The attachment that holds the sender's reference gives the peer its own (a process may have several).
        _pendingGifts.Add((buffer.Pool, descriptor));
    }

    public SharedBuffer Read(ref Reader reader)
    {
        var fields = new TagReader(ref reader, WireType.TagDelimited, "shared buffer");
        byte mode = 0;
        ulong offset = 0, length = 0;
        uint record = 0, generation = 0;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            switch (id)
            {
                case 0: mode = Codec<byte>.ReadValue(ref reader, wire); break;
                case 1: offset = Codec<ulong>.ReadValue(ref reader, wire); break;
                case 2: length = Codec<ulong>.ReadValue(ref reader, wire); break;
                case 3: record = Codec<uint>.ReadValue(ref reader, wire); break;
                case 4: generation = Codec<uint>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        if (mode != DescriptorMode)
        {
            throw new SerializationException($"A shared buffer in mode {mode} on a link that exchanges descriptors.");
        }

        if (length is 0 or > SharedBufferPool.MaxBufferLength || offset % 4096 != 0 || offset + length > (ulong)pool.Capacity)
        {
            throw new SerializationException($"A shared-buffer descriptor of {length} bytes at {offset} does not fit pool {pool.Name}.");
        }

        try
        {
            return pool.Adopt(new BufferDescriptor(offset, length, record, generation, 0));
        }
        catch (DataplaneException error)
        {
            throw new SerializationException($"A shared-buffer descriptor that names no live buffer: {error.Message}");
        }
    }

    public void CommitFrame()
    {
        foreach (var (giver, descriptor) in _pendingGifts)
        {
            try
            {
                giver.Give(descriptor, peerSlot);
            }
            catch (DataplaneException error) when (error.Status == NativeStatus.NoSuchSlot)
            {
                // The peer's process is gone from the pool: its connection is closing and the frame dies with it.
            }
        }

        _pendingGifts.Clear();
    }

    public void AbandonFrame() => _pendingGifts.Clear();
}

/// <summary>A buffer channel that learns when the frame its writes went into is complete or abandoned.</summary>
internal interface IFrameBufferChannel : ISharedBufferChannel
{
    void CommitFrame();

    void AbandonFrame();
}
