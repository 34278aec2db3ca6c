using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Orleans.LIFL.Grains.MoE.Model;

/// <summary>One tensor of a safetensors file: its dtype, shape and byte range in the data area.</summary>
public sealed record SafeTensorInfo(string Name, string DType, IReadOnlyList<long> Shape, long Begin, long End)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A safetensors file (Hugging Face's format: an 8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and data offsets, then the data): the header is read and checked when opened, a tensor's
/// bytes only when asked for, straight from the file (so loading one expert reads that expert's bytes, no more).
/// F32, F16 and BF16 tensors read as float32; BF16 ones also as they are (<see cref="ReadBFloat16"/>).
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>Headers larger than this are refused (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _file;
    private readonly long _dataStart;

    private SafeTensorsFile(string path, Microsoft.Win32.SafeHandles.SafeFileHandle file, long dataStart, Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        _file = file;
        _dataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    public string Path { get; }

    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens <paramref name="path"/> and checks its header; <see cref="InvalidDataException"/> names what is wrong.</summary>
    public static SafeTensorsFile Open(string path)
    {
        var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        try
        {
            var length = RandomAccess.GetLength(file);
            Span<byte> prefix = stackalloc byte[8];
            if (length < 8 || RandomAccess.Read(file, prefix, 0) != 8)
            {
                throw new InvalidDataException($"{path} is not a safetensors file: {length} bytes, shorter than the 8-byte header length.");
            }

            var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (headerLength > MaxHeaderBytes || (long)headerLength > length - 8)
            {
                throw new InvalidDataException($"{path}: the header length {headerLength:N0} does not fit the {length:N0}-byte file (or exceeds {MaxHeaderBytes:N0}).");
            }

            var header = new byte[headerLength];
            RandomAccess.Read(file, header, 8);
            var dataStart = 8 + (long)headerLength;
            var (tensors, metadata) = ParseHeader(path, header, length - dataStart);
            return new SafeTensorsFile(path, file, dataStart, tensors, metadata);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Reads tensor <paramref name="name"/> as float32 values.</summary>
    public float[] ReadFloat32(string name)
    {
        var info = Info(name);
        var values = new float[info.Elements];
        ReadFloat32(name, values);
        return values;
    }

    /// <summary>Reads tensor <paramref name="name"/> into <paramref name="destination"/> (exactly its element count).</summary>
    public void ReadFloat32(string name, Span<float> destination)
    {
        var info = Info(name);
        if (destination.Length != info.Elements)
        {
            throw new ArgumentException($"Tensor {name} has {info.Elements:N0} values, not {destination.Length:N0}.", nameof(destination));
        }

        if (info.DType == "F32")
        {
            ReadExactly(MemoryMarshal.AsBytes(destination), info);
            return;
        }

        var raw = new byte[info.End - info.Begin];
        ReadExactly(raw, info);
        var halves = MemoryMarshal.Cast<byte, ushort>(raw);
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = info.DType == "F16"
                ? (float)BitConverter.UInt16BitsToHalf(halves[i])
                : MoeKernels.Widen(halves[i]);
        }
    }

    /// <summary>Reads BF16 tensor <paramref name="name"/> as its values' bits (no conversion).</summary>
    public ushort[] ReadBFloat16(string name)
    {
        var info = Info(name);
        if (info.DType != "BF16")
        {
            throw new InvalidDataException($"{Path}: tensor {name} is {info.DType}, not BF16.");
        }

        var values = new ushort[info.Elements];
        ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()), info);
        return values;
    }

    public SafeTensorInfo Info(string name) =>
        Tensors.TryGetValue(name, out var info) ? info : throw new KeyNotFoundException($"{Path} has no tensor named '{name}'.");

    public void Dispose() => _file.Dispose();

    /// <summary>
    /// Writes float32 tensors (in the order given) and optional metadata as a safetensors file, as F32 or, with
    /// <paramref name="bfloat16"/>, as BF16 (each value rounded to the nearest bfloat16).
    /// </summary>
    public static void Write(string path, IEnumerable<(string Name, IReadOnlyList<long> Shape, float[] Values)> tensors, IReadOnlyDictionary<string, string>? metadata = null, bool bfloat16 = false)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                {
                    writer.WriteString(key, value);
                }

                writer.WriteEndObject();
            }

            long offset = 0;
            foreach (var (name, shape, values) in list)
            {
                if (shape.Aggregate(1L, (a, b) => a * b) != values.Length)
                {
                    throw new ArgumentException($"Tensor {name}: shape [{string.Join(", ", shape)}] does not hold {values.Length:N0} values.", nameof(tensors));
                }

                writer.WriteStartObject(name);
                writer.WriteString("dtype", bfloat16 ? "BF16" : "F32");
                writer.WriteStartArray("shape");
                foreach (var dimension in shape)
                {
                    writer.WriteNumberValue(dimension);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                offset += (long)values.Length * (bfloat16 ? sizeof(ushort) : sizeof(float));
                writer.WriteNumberValue(offset);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        // The data area starts 8-byte aligned, the header padded with spaces as the reference writer does.
        var padding = (int)((8 - (json.Length % 8)) % 8);
        json.Write(Enumerable.Repeat((byte)' ', padding).ToArray());

        using var output = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)json.Length);
        output.Write(prefix);
        json.WriteTo(output);
        foreach (var (_, _, values) in list)
        {
            if (bfloat16)
            {
                var narrowed = values.Select(MoeKernels.Narrow).ToArray();
                output.Write(MemoryMarshal.AsBytes(narrowed.AsSpan()));
            }
            else
            {
                output.Write(MemoryMarshal.AsBytes(values.AsSpan()));
            }
        }
    }

    /// <summary>Reads a tensor's bytes as they are stored (little-endian, as this machine must be to use them).</summary>
    private void ReadExactly(Span<byte> destination, SafeTensorInfo info)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("safetensors data is little-endian; this machine is not.");
        }

        var read = 0;
        while (read < destination.Length)
        {
            var n = RandomAccess.Read(_file, destination[read..], _dataStart + info.Begin + read);
            if (n == 0)
            {
                throw new InvalidDataException($"{Path}: tensor {info.Name} ends past the end of the file.");
            }

            read += n;
        }
    }

    private static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException error)
        {
            throw new InvalidDataException($"{path}: the header is not JSON ({error.Message}).", error);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{path}: the header is not a JSON object.");
            }

            var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    foreach (var entry in property.Value.EnumerateObject())
                    {
                        metadata[entry.Name] = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : entry.Value.GetRawText();
                    }

                    continue;
                }

                tensors[property.Name] = ParseTensor(path, property.Name, property.Value, dataLength);
            }

            var ranges = tensors.Values.Where(t => t.End > t.Begin).OrderBy(t => t.Begin).ToList();
            for (var i = 1; i < ranges.Count; i++)
            {
                if (ranges[i].Begin < ranges[i - 1].End)
                {
                    throw new InvalidDataException($"{path}: tensors {ranges[i - 1].Name} and {ranges[i].Name} overlap.");
                }
            }

            return (tensors, metadata);
        }
    }

    private static SafeTensorInfo ParseTensor(string path, string name, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array
            || !value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
        {
            throw new InvalidDataException($"{path}: tensor {name} needs a dtype, a shape and two data_offsets.");
        }

        var type = dtype.GetString()!;
        var size = type switch
        {
            "F32" => 4,
            "F16" or "BF16" => 2,
            _ => throw new InvalidDataException($"{path}: tensor {name} is {type}; F32, F16 and BF16 are read."),
        };
        var dimensions = new List<long>();
        foreach (var dimension in shape.EnumerateArray())
        {
            if (!dimension.TryGetInt64(out var d) || d < 0)
            {
                throw new InvalidDataException($"{path}: tensor {name} has a bad dimension {dimension.GetRawText()}.");
            }

            dimensions.Add(d);
        }

        if (!offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin || end > dataLength)
        {
            throw new InvalidDataException($"{path}: tensor {name}'s data_offsets {offsets.GetRawText()} are not inside the {dataLength:N0}-byte data area.");
        }

        var info = new SafeTensorInfo(name, type, dimensions, begin, end);
        if (info.Elements * size != end - begin)
        {
            throw new InvalidDataException($"{path}: tensor {name} of shape [{string.Join(", ", dimensions)}] {type} needs {info.Elements * size:N0} bytes, its offsets give {end - begin:N0}.");
        }

        return info;
    }
}
