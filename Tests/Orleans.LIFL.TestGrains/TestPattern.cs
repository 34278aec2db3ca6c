using System.Runtime.InteropServices;

namespace Orleans.LIFL.TestGrains;

/// <summary>Bytes that depend on a seed and their position, and a checksum to compare what arrived with what was sent.</summary>
public static class TestPattern
{
    public static void Fill(Span<byte> bytes, int seed)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(bytes);
        var state = ((ulong)seed * 0x9E3779B97F4A7C15UL) | 1;
        for (var i = 0; i < words.Length; i++)
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            words[i] = state;
        }

        for (var i = words.Length * 8; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(seed + i);
        }
    }

    /// <summary>FNV-1a over 8-byte words, then the tail bytes, then the length.</summary>
    public static ulong Checksum(ReadOnlySpan<byte> bytes)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(bytes);
        var hash = 0xCBF29CE484222325UL;
        foreach (var word in words)
        {
            hash = (hash ^ word) * 0x100000001B3UL;
        }

        for (var i = words.Length * 8; i < bytes.Length; i++)
        {
            hash = (hash ^ bytes[i]) * 0x100000001B3UL;
        }

        return hash ^ (ulong)bytes.Length;
    }
}
