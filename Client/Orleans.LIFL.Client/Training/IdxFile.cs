using System.Buffers.Binary;
using System.IO.Compression;

namespace Orleans.LIFL.Client.Training;

/// <summary>
/// Reads gzip-compressed IDX files of unsigned bytes, the format of MNIST and Fashion-MNIST: a big-endian magic number
/// 0x000008NN (N dimensions of unsigned bytes), N big-endian int32 dimensions, then the values in row-major order.
/// </summary>
internal static class IdxFile
{
    private const uint UnsignedByteMagic = 0x0800;

    /// <summary>The shape and the values of the file at <paramref name="path"/>, which must have <paramref name="dimensions"/> dimensions.</summary>
    /// <exception cref="InvalidDataException">The file is not gzip, has the wrong magic number, or is shorter or longer than its header says.</exception>
    public static (int[] Shape, byte[] Values) Read(string path, int dimensions)
    {
        using var file = File.OpenRead(path);
        using var gzip = new GZipStream(file, CompressionMode.Decompress);

        Span<byte> header = stackalloc byte[sizeof(uint) * (1 + dimensions)];
        var read = ReadUpTo(gzip, header, path);
        if (read < sizeof(uint))
        {
            throw Malformed(path, $"it ends after {read} bytes, inside the 4-byte magic number");
        }

        var magic = BinaryPrimitives.ReadUInt32BigEndian(header);
        var expectedMagic = UnsignedByteMagic | (uint)dimensions;
        if (magic != expectedMagic)
        {
            throw Malformed(path, $"its magic number is 0x{magic:X8}, not 0x{expectedMagic:X8} (unsigned bytes in {dimensions} dimensions)");
        }

        if (read < header.Length)
        {
            throw Malformed(path, $"it ends after {read} bytes, inside the {header.Length}-byte header");
        }

        var shape = new int[dimensions];
        long total = 1;
        for (var i = 0; i < dimensions; i++)
        {
            shape[i] = BinaryPrimitives.ReadInt32BigEndian(header[(sizeof(uint) * (1 + i))..]);
            if (shape[i] <= 0)
            {
                throw Malformed(path, $"dimension {i} of its header is {shape[i]}");
            }

            total *= shape[i];
            if (total > Array.MaxLength)
            {
                throw Malformed(path, $"its header declares more than {Array.MaxLength:N0} values");
            }
        }

        var values = new byte[total];
        read = ReadUpTo(gzip, values, path);
        if (read < values.Length)
        {
            throw Malformed(path, $"it is truncated: its header declares [{string.Join(", ", shape)}] = {total:N0} values but only {read:N0} follow");
        }

        if (ReadUpTo(gzip, stackalloc byte[1], path) != 0)
        {
            throw Malformed(path, $"it has data after the {total:N0} values its header declares");
        }

        return (shape, values);
    }

    /// <summary>Fills <paramref name="buffer"/> unless the stream ends first; how many bytes were read.</summary>
    private static int ReadUpTo(GZipStream gzip, Span<byte> buffer, string path)
    {
        try
        {
            return gzip.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            throw Malformed(path, $"it is not valid gzip ({e.Message})", e);
        }
    }

    private static InvalidDataException Malformed(string path, string problem, Exception? inner = null) =>
        new($"'{path}' is not a usable IDX file: {problem}.", inner);
}
