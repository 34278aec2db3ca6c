using System.Buffers.Binary;
using System.IO.Compression;

namespace Orleans.LIFL.Client.Tests.Training;

/// <summary>Writes small gzip-compressed IDX files, well-formed or broken in one chosen way.</summary>
internal static class IdxTestFiles
{
    public static void WriteImages(string path, int count, Func<int, byte>? pixel = null, uint magic = 0x0803, int side = 28, int extraBytes = 0)
    {
        var pixels = Enumerable.Range(0, count * side * side + extraBytes).Select(pixel ?? (i => (byte)i));
        WriteGzip(path, [.. Header(magic, count, side, side), .. pixels]);
    }

    public static void WriteLabels(string path, byte[] labels, int? declaredCount = null) =>
        WriteGzip(path, [.. Header(0x0801, declaredCount ?? labels.Length), .. labels]);

    public static void WriteGzip(string path, byte[] content)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        gzip.Write(content);
    }

    private static byte[] Header(uint magic, params int[] dimensions)
    {
        var header = new byte[sizeof(uint) * (1 + dimensions.Length)];
        BinaryPrimitives.WriteUInt32BigEndian(header, magic);
        for (var i = 0; i < dimensions.Length; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(sizeof(uint) * (1 + i)), dimensions[i]);
        }

        return header;
    }
}
