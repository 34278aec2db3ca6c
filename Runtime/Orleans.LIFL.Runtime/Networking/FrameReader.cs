using System.Buffers;
using System.Buffers.Binary;

namespace Orleans.LIFL.Runtime.Networking;

/// <summary>Cuts complete frames out of received bytes.</summary>
internal static class FrameReader
{
    /// <summary>The length prefix at the start of <paramref name="buffer"/> (which holds at least 4 bytes).</summary>
    public static int ReadLength(in ReadOnlySequence<byte> buffer)
    {
        var first = buffer.FirstSpan;
        if (first.Length >= 4)
        {
            return BinaryPrimitives.ReadInt32LittleEndian(first);
        }

        Span<byte> prefix = stackalloc byte[4];
        buffer.Slice(0, 4).CopyTo(prefix);
        return BinaryPrimitives.ReadInt32LittleEndian(prefix);
    }

    /// <summary>Takes the next complete frame (kind byte and payload) off the front of <paramref name="buffer"/>.</summary>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, int maxFrameBytes, out ReadOnlySequence<byte> frame)
    {
        if (buffer.Length < 4)
        {
            frame = default;
            return false;
        }

        var length = ReadLength(buffer);
        if (length < 1 || length > maxFrameBytes)
        {
            throw new ProtocolException($"a frame of {length} bytes (1 to {maxFrameBytes} allowed)");
        }

        if (buffer.Length < 4L + length)
        {
            frame = default;
            return false;
        }

        frame = buffer.Slice(4, length);
        buffer = buffer.Slice(frame.End);
        return true;
    }
}
