using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Streams;

namespace Orleans.LIFL.Serialization;

/// <summary>Codecs of the framework types that cross grain calls: primitives, strings, time, collections, tuples.</summary>
internal static class BuiltInCodecs
{
    private static readonly FrozenDictionary<Type, object> Simple = new Dictionary<Type, object>
    {
        [typeof(bool)] = new VarIntCodec<bool>(v => v ? 1UL : 0UL, v => v != 0),
        [typeof(byte)] = new VarIntCodec<byte>(v => v, v => checked((byte)v)),
        [typeof(sbyte)] = new SignedCodec<sbyte>(v => v, v => checked((sbyte)v)),
        [typeof(short)] = new SignedCodec<short>(v => v, v => checked((short)v)),
        [typeof(ushort)] = new VarIntCodec<ushort>(v => v, v => checked((ushort)v)),
        [typeof(int)] = new SignedCodec<int>(v => v, v => checked((int)v)),
        [typeof(uint)] = new VarIntCodec<uint>(v => v, v => checked((uint)v)),
        [typeof(long)] = new SignedCodec<long>(v => v, v => v),
        [typeof(ulong)] = new VarIntCodec<ulong>(v => v, v => v),
        [typeof(char)] = new VarIntCodec<char>(v => v, v => checked((char)v)),
        [typeof(float)] = new SingleCodec(),
        [typeof(double)] = new DoubleCodec(),
        [typeof(decimal)] = new BlittableCodec<decimal>(),
        [typeof(Guid)] = new BlittableCodec<Guid>(),
        [typeof(string)] = new StringCodec(),
        [typeof(DateTime)] = new Fixed64Codec<DateTime>(v => (ulong)v.ToBinary(), v => DateTime.FromBinary((long)v)),
        [typeof(TimeSpan)] = new SignedCodec<TimeSpan>(v => v.Ticks, TimeSpan.FromTicks),
        [typeof(DateTimeOffset)] = new DateTimeOffsetCodec(),
        [typeof(DateOnly)] = new SignedCodec<DateOnly>(v => v.DayNumber, v => DateOnly.FromDayNumber(checked((int)v))),
        [typeof(TimeOnly)] = new SignedCodec<TimeOnly>(v => v.Ticks, v => new TimeOnly(v)),
        [typeof(Unit)] = new VarIntCodec<Unit>(_ => 0, _ => default),
        [typeof(CancellationToken)] = new VarIntCodec<CancellationToken>(_ => 0, _ => CancellationToken.None),
        [typeof(Uri)] = new TextCodec<Uri>(v => v.OriginalString, v => new Uri(v, UriKind.RelativeOrAbsolute)),
        [typeof(Version)] = new TextCodec<Version>(v => v.ToString(), Version.Parse),
        [typeof(GrainType)] = new TextCodec<GrainType>(v => v.Value, v => new GrainType(v)),
        [typeof(SiloAddress)] = new TextCodec<SiloAddress>(v => v.ToString(), SiloAddress.Parse),
        [typeof(GrainId)] = new GrainIdCodec(),
        [typeof(StreamId)] = new StreamIdCodec(),
        [typeof(StreamSequenceToken)] = new SignedTagCodec<StreamSequenceToken>(v => v.SequenceNumber, v => new StreamSequenceToken(v)),
        [typeof(byte[])] = new BlockCodec<byte>(),
        [typeof(sbyte[])] = new BlockCodec<sbyte>(),
        [typeof(short[])] = new BlockCodec<short>(),
        [typeof(ushort[])] = new BlockCodec<ushort>(),
        [typeof(int[])] = new BlockCodec<int>(),
        [typeof(uint[])] = new BlockCodec<uint>(),
        [typeof(long[])] = new BlockCodec<long>(),
        [typeof(ulong[])] = new BlockCodec<ulong>(),
        [typeof(float[])] = new BlockCodec<float>(),
        [typeof(double[])] = new BlockCodec<double>(),
        [typeof(Half[])] = new BlockCodec<Half>(),
        [typeof(object)] = new ObjectCodec(),
        [typeof(Dataplane.SharedBuffer)] = new SharedBufferCodec(),
    }.ToFrozenDictionary();

    private static readonly Dictionary<Type, Type> Families = new()
    {
        [typeof(List<>)] = typeof(ListCodec<>),
        [typeof(HashSet<>)] = typeof(HashSetCodec<>),
        [typeof(Queue<>)] = typeof(QueueCodec<>),
        [typeof(Dictionary<,>)] = typeof(DictionaryCodec<,>),
        [typeof(SortedDictionary<,>)] = typeof(SortedDictionaryCodec<,>),
        [typeof(KeyValuePair<,>)] = typeof(KeyValuePairCodec<,>),
        [typeof(Nullable<>)] = typeof(NullableCodec<>),
        [typeof(ValueTuple<,>)] = typeof(ValueTupleCodec<,>),
        [typeof(ValueTuple<,,>)] = typeof(ValueTupleCodec<,,>),
        [typeof(ValueTuple<,,,>)] = typeof(ValueTupleCodec<,,,>),
        [typeof(Tuple<,>)] = typeof(TupleCodec<,>),
        [typeof(Tuple<,,>)] = typeof(TupleCodec<,,>),
        [typeof(ImmutableArray<>)] = typeof(ImmutableArrayCodec<>),
        [typeof(ImmutableList<>)] = typeof(ImmutableListCodec<>),
        [typeof(Immutable<>)] = typeof(ImmutableWrapperCodec<>),
        [typeof(Memory<>)] = typeof(MemoryCodec<>),
        [typeof(ReadOnlyMemory<>)] = typeof(ReadOnlyMemoryCodec<>),
    };

    public static object? Find(Type type) => Simple.GetValueOrDefault(type);

    public static object? CreateForFamily(Type type)
    {
        Type? codec = null;
        if (type.IsEnum)
        {
            codec = typeof(EnumCodec<>).MakeGenericType(type);
        }
        else if (type.IsSZArray)
        {
            codec = typeof(ArrayCodec<>).MakeGenericType(type.GetElementType()!);
        }
        else if (type.IsGenericType && Families.TryGetValue(type.GetGenericTypeDefinition(), out var family))
        {
            codec = family.MakeGenericType(type.GetGenericArguments());
        }
        else if (typeof(IAddressable).IsAssignableFrom(type) && (type.IsInterface || typeof(GrainReference).IsAssignableFrom(type)))
        {
            codec = typeof(GrainReferenceCodec<>).MakeGenericType(type);
        }
        else if (typeof(Exception).IsAssignableFrom(type))
        {
            codec = typeof(ExceptionCodec<>).MakeGenericType(type);
        }

        return codec is null ? null : Activator.CreateInstance(codec);
    }
}

internal sealed class VarIntCodec<T>(Func<T, ulong> toWire, Func<ulong, T> fromWire) : IFieldCodec<T>
{
    public WireType WireType => WireType.VarInt;

    public void WriteValue(ref Writer writer, T value) => writer.WriteVarUInt64(toWire(value));

    public T ReadValue(ref Reader reader, WireType wireType)
    {
        if (wireType != WireType.VarInt)
        {
            throw reader.Unexpected(wireType, typeof(T).Name);
        }

        try
        {
            return fromWire(reader.ReadVarUInt64());
        }
        catch (OverflowException)
        {
            throw new SerializationException($"A value out of range for {typeof(T).Name} at offset {reader.Position}.");
        }
    }
}

internal sealed class SignedCodec<T>(Func<T, long> toWire, Func<long, T> fromWire) : IFieldCodec<T>
{
    public WireType WireType => WireType.VarInt;

    public void WriteValue(ref Writer writer, T value) => writer.WriteVarInt64(toWire(value));

    public T ReadValue(ref Reader reader, WireType wireType)
    {
        if (wireType != WireType.VarInt)
        {
            throw reader.Unexpected(wireType, typeof(T).Name);
        }

        try
        {
            return fromWire(reader.ReadVarInt64());
        }
        catch (Exception error) when (error is OverflowException or ArgumentOutOfRangeException)
        {
            throw new SerializationException($"A value out of range for {typeof(T).Name} at offset {reader.Position}.");
        }
    }
}

internal sealed class Fixed64Codec<T>(Func<T, ulong> toWire, Func<ulong, T> fromWire) : IFieldCodec<T>
{
    public WireType WireType => WireType.Fixed64;

    public void WriteValue(ref Writer writer, T value) => writer.WriteFixed64(toWire(value));

    public T ReadValue(ref Reader reader, WireType wireType)
    {
        if (wireType != WireType.Fixed64)
        {
            throw reader.Unexpected(wireType, typeof(T).Name);
        }

        try
        {
            return fromWire(reader.ReadFixed64());
        }
        catch (ArgumentException)
        {
            throw new SerializationException($"An invalid {typeof(T).Name} at offset {reader.Position}.");
        }
    }
}

internal sealed class SingleCodec : IFieldCodec<float>
{
    public WireType WireType => WireType.Fixed32;

    public void WriteValue(ref Writer writer, float value) => writer.WriteFixed32(BitConverter.SingleToUInt32Bits(value));

    public float ReadValue(ref Reader reader, WireType wireType) =>
        wireType == WireType.Fixed32 ? BitConverter.UInt32BitsToSingle(reader.ReadFixed32()) : throw reader.Unexpected(wireType, "float");
}

internal sealed class DoubleCodec : IFieldCodec<double>
{
    public WireType WireType => WireType.Fixed64;

    public void WriteValue(ref Writer writer, double value) => writer.WriteFixed64(BitConverter.DoubleToUInt64Bits(value));

    public double ReadValue(ref Reader reader, WireType wireType) =>
        wireType == WireType.Fixed64 ? BitConverter.UInt64BitsToDouble(reader.ReadFixed64()) : throw reader.Unexpected(wireType, "double");
}

/// <summary>An unmanaged value as its raw bytes (decimal, Guid).</summary>
internal sealed class BlittableCodec<T> : IFieldCodec<T>
    where T : unmanaged
{
    public WireType WireType => WireType.LengthPrefixed;

    public void WriteValue(ref Writer writer, T value) =>
        writer.WriteLengthPrefixed(System.Runtime.InteropServices.MemoryMarshal.AsBytes(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpan(ref value, 1)));

    public T ReadValue(ref Reader reader, WireType wireType)
    {
        if (wireType != WireType.LengthPrefixed)
        {
            throw reader.Unexpected(wireType, typeof(T).Name);
        }

        var bytes = reader.ReadLengthPrefixed();
        return bytes.Length == Unsafe.SizeOf<T>()
            ? System.Runtime.InteropServices.MemoryMarshal.Read<T>(bytes)
            : throw new SerializationException($"A {typeof(T).Name} of {bytes.Length} bytes (expected {Unsafe.SizeOf<T>()}).");
    }
}

internal sealed class StringCodec : IFieldCodec<string>
{
    public WireType WireType => WireType.LengthPrefixed;

    public void WriteValue(ref Writer writer, string value) => writer.WriteStringBody(value);

    public string ReadValue(ref Reader reader, WireType wireType) =>
        wireType == WireType.LengthPrefixed ? reader.ReadStringBody() : throw reader.Unexpected(wireType, "string");
}

/// <summary>A value written as its text form.</summary>
internal sealed class TextCodec<T>(Func<T, string> toText, Func<string, T> parse) : IFieldCodec<T>
{
    public WireType WireType => WireType.LengthPrefixed;

    public void WriteValue(ref Writer writer, T value) => writer.WriteStringBody(toText(value));

    public T ReadValue(ref Reader reader, WireType wireType)
    {
        if (wireType != WireType.LengthPrefixed)
        {
            throw reader.Unexpected(wireType, typeof(T).Name);
        }

        var text = reader.ReadStringBody();
        try
        {
            return parse(text);
        }
        catch (Exception error) when (error is FormatException or ArgumentException or UriFormatException or OverflowException)
        {
            throw new SerializationException($"'{text}' is not a valid {typeof(T).Name}.");
        }
    }
}

internal sealed class DateTimeOffsetCodec : IFieldCodec<DateTimeOffset>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, DateTimeOffset value)
    {
        Codec<long>.WriteField(ref writer, 0, value.Ticks);
        Codec<short>.WriteField(ref writer, 1, (short)value.Offset.TotalMinutes);
        writer.WriteEndTag();
    }

    public DateTimeOffset ReadValue(ref Reader reader, WireType wireType)
    {
        var fields = new TagReader(ref reader, wireType, "DateTimeOffset");
        long ticks = 0;
        short minutes = 0;
        while (fields.Next(ref reader, out var id, out var type))
        {
            switch (id)
            {
                case 0: ticks = Codec<long>.ReadValue(ref reader, type); break;
                case 1: minutes = Codec<short>.ReadValue(ref reader, type); break;
                default: reader.SkipField(type); break;
            }
        }

        try
        {
            return new DateTimeOffset(ticks, TimeSpan.FromMinutes(minutes));
        }
        catch (ArgumentException)
        {
            throw new SerializationException($"An invalid DateTimeOffset ({ticks} ticks, {minutes} min offset).");
        }
    }
}

internal sealed class GrainIdCodec : IFieldCodec<GrainId>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, GrainId value)
    {
        Codec<string>.WriteField(ref writer, 0, value.Type.Value);
        Codec<string>.WriteField(ref writer, 1, value.Key);
        writer.WriteEndTag();
    }

    public GrainId ReadValue(ref Reader reader, WireType wireType)
    {
        var fields = new TagReader(ref reader, wireType, "GrainId");
        string? type = null;
        string? key = null;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            switch (id)
            {
                case 0: type = Codec<string>.ReadValue(ref reader, wire); break;
                case 1: key = Codec<string>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        return string.IsNullOrWhiteSpace(type) || key is null
            ? throw new SerializationException("A grain id without a type or key.")
            : new GrainId(new GrainType(type), key);
    }
}

internal sealed class StreamIdCodec : IFieldCodec<StreamId>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, StreamId value)
    {
        Codec<string>.WriteField(ref writer, 0, value.Namespace);
        Codec<string>.WriteField(ref writer, 1, value.Key);
        writer.WriteEndTag();
    }

    public StreamId ReadValue(ref Reader reader, WireType wireType)
    {
        var fields = new TagReader(ref reader, wireType, "StreamId");
        string? ns = null;
        string? key = null;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            switch (id)
            {
                case 0: ns = Codec<string>.ReadValue(ref reader, wire); break;
                case 1: key = Codec<string>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        try
        {
            return new StreamId(ns!, key!);
        }
        catch (ArgumentException error)
        {
            throw new SerializationException($"An invalid stream id: {error.Message}");
        }
    }
}

/// <summary>A small object with one signed number (field 0).</summary>
internal sealed class SignedTagCodec<T>(Func<T, long> toWire, Func<long, T> fromWire) : IFieldCodec<T>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, T value)
    {
        Codec<long>.WriteField(ref writer, 0, toWire(value));
        writer.WriteEndTag();
    }

    public T ReadValue(ref Reader reader, WireType wireType)
    {
        var fields = new TagReader(ref reader, wireType, typeof(T).Name);
        long value = 0;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            if (id == 0)
            {
                value = Codec<long>.ReadValue(ref reader, wire);
            }
            else
            {
                reader.SkipField(wire);
            }
        }

        return fromWire(value);
    }
}

internal sealed class BlockCodec<T> : IFieldCodec<T[]>
    where T : unmanaged
{
    public WireType WireType => WireType.LengthPrefixed;

    public void WriteValue(ref Writer writer, T[] value) => writer.WriteBlock<T>(value);

    public T[] ReadValue(ref Reader reader, WireType wireType) =>
        wireType == WireType.LengthPrefixed ? reader.ReadBlock<T>() : throw reader.Unexpected(wireType, $"{typeof(T).Name}[]");
}

internal sealed class EnumCodec<T> : IFieldCodec<T>
    where T : struct, Enum
{
    public WireType WireType => WireType.VarInt;

    public void WriteValue(ref Writer writer, T value) =>
        writer.WriteVarInt64(Unsafe.SizeOf<T>() switch
        {
            1 => Unsafe.As<T, sbyte>(ref value),
            2 => Unsafe.As<T, short>(ref value),
            4 => Unsafe.As<T, int>(ref value),
            _ => Unsafe.As<T, long>(ref value),
        });

    public T ReadValue(ref Reader reader, WireType wireType)
    {
        if (wireType != WireType.VarInt)
        {
            throw reader.Unexpected(wireType, typeof(T).Name);
        }

        var raw = reader.ReadVarInt64();
        T value = default;
        switch (Unsafe.SizeOf<T>())
        {
            case 1: Unsafe.As<T, sbyte>(ref value) = (sbyte)raw; break;
            case 2: Unsafe.As<T, short>(ref value) = (short)raw; break;
            case 4: Unsafe.As<T, int>(ref value) = (int)raw; break;
            default: Unsafe.As<T, long>(ref value) = raw; break;
        }

        return value;
    }
}

/// <summary>Any value declared as object: always written with its runtime type.</summary>
internal sealed class ObjectCodec : IFieldCodec<object>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, object value) => writer.WriteEndTag();

    public object ReadValue(ref Reader reader, WireType wireType)
    {
        var fields = new TagReader(ref reader, wireType, "object");
        while (fields.Next(ref reader, out _, out var wire))
        {
            reader.SkipField(wire);
        }

        return new object();
    }
}

/// <summary>Walks the fields of a tag-delimited value, guarding nesting depth.</summary>
public struct TagReader
{
    private bool _done;

    public TagReader(ref Reader reader, WireType wireType, string what)
    {
        if (wireType != WireType.TagDelimited)
        {
            throw reader.Unexpected(wireType, what);
        }

        reader.EnterNested();
        _done = false;
    }

    /// <summary>The next field's header; false (and the nesting closed) at the end tag.</summary>
    public bool Next(ref Reader reader, out uint fieldId, out WireType wireType)
    {
        if (_done)
        {
            fieldId = 0;
            wireType = WireType.EndTag;
            return false;
        }

        (fieldId, wireType) = reader.ReadFieldHeader();
        if (wireType == WireType.EndTag)
        {
            _done = true;
            reader.ExitNested();
            return false;
        }

        return true;
    }
}

/// <summary>A shared buffer, as the link's channel writes it (a descriptor or the bytes).</summary>
internal sealed class SharedBufferCodec : IFieldCodec<Dataplane.SharedBuffer>
{
    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, Dataplane.SharedBuffer value) => Channel(writer.Session).Write(ref writer, value);

    public Dataplane.SharedBuffer ReadValue(ref Reader reader, WireType wireType)
    {
        if (wireType != WireType.TagDelimited)
        {
            throw new SerializationException($"A shared buffer arrived as {wireType}, at offset {reader.Position}.");
        }

        return Channel(reader.Session).Read(ref reader);
    }

    private static ISharedBufferChannel Channel(SerializerSession? session) =>
        session?.Buffers ?? throw new SerializationException(
            "A SharedBuffer can only cross a link between processes that have a shared pool (silos, and clients with a dataplane); it cannot be stored or sent here.");
}
