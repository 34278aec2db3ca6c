using System.IO.Hashing;

namespace Orleans.LIFL.TestGrains;

/// <summary>Bytes that depend on a seed (the same in every process), and a hash to compare what arrived with what was sent.</summary>
public static class TestPattern
{
    public static void Fill(Span<byte> bytes, int seed) => new Random(seed).NextBytes(bytes);

    public static ulong Checksum(ReadOnlySpan<byte> bytes) => XxHash3.HashToUInt64(bytes);
}
