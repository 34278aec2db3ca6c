using System.Collections.Concurrent;
using System.ComponentModel;
using System.Reflection;
using System.Text.RegularExpressions;
using Orleans.LIFL.Invocation;

namespace Orleans.LIFL.Serialization;

/// <summary>Writes and reads values of one type in the wire format (the body after a field header).</summary>
public interface IFieldCodec<T>
{
    /// <summary>The wire type a non-null value is written as.</summary>
    WireType WireType { get; }

    void WriteValue(ref Writer writer, T value);

    T ReadValue(ref Reader reader, WireType wireType);
}

/// <summary>Marks codecs that handle every subtype of their declared type themselves (grain references, exceptions).</summary>
public interface ISubtypeCodec;

/// <summary>
/// What serialization needs from the process and the link it happens on: the runtime (to rebuild grain
/// references) and how shared buffers cross this link.
/// </summary>
public sealed class SerializerSession
{
    public SerializerSession(IGrainCallRuntime? runtime, ISharedBufferChannel? buffers = null)
    {
        Runtime = runtime;
        Buffers = buffers;
    }

    public IGrainCallRuntime? Runtime { get; }

    /// <summary>How <see cref="Dataplane.SharedBuffer"/> values cross this link; null where they cannot.</summary>
    public ISharedBufferChannel? Buffers { get; }
}

/// <summary>
/// Moves shared buffers across one link: a descriptor to a process of the same node (the bytes stay in the shared
/// pool), the bytes themselves to another node. Each read returns a handle the reader owns.
/// </summary>
public interface ISharedBufferChannel
{
    void Write(ref Writer writer, Dataplane.SharedBuffer buffer);

    Dataplane.SharedBuffer Read(ref Reader reader);
}

/// <summary>The wire format of <typeparamref name="T"/>: nulls, subtypes and exact values.</summary>
[EditorBrowsable(EditorBrowsableState.Advanced)]
public static class Codec<T>
{
    private static readonly IFieldCodec<T>? Exact = CodecRegistry.Resolve<T>();
    private static readonly bool HandlesSubtypes = Exact is ISubtypeCodec;

    /// <summary>True when a codec exists for exactly this type.</summary>
    public static bool IsSupported => Exact is not null;

    public static void WriteField(ref Writer writer, uint fieldId, T value)
    {
        if (value is null)
        {
            writer.WriteFieldHeader(fieldId, WireType.Null);
            return;
        }

        if (!typeof(T).IsValueType && !typeof(T).IsSealed && !HandlesSubtypes && value.GetType() != typeof(T))
        {
            CodecRegistry.WritePolymorphic(ref writer, fieldId, value);
            return;
        }

        var codec = Exact ?? throw CodecRegistry.NoCodec(typeof(T));
        writer.WriteFieldHeader(fieldId, codec.WireType);
        codec.WriteValue(ref writer, value);
    }

    public static T ReadValue(ref Reader reader, WireType wireType)
    {
        switch (wireType)
        {
            case WireType.Null:
                if (default(T) is not null)
                {
                    throw new SerializationException($"Null where a {typeof(T).Name} was expected, at offset {reader.Position}.");
                }

                return default!;
            case WireType.Polymorphic:
                var value = CodecRegistry.ReadPolymorphic(ref reader);
                return value is T typed
                    ? typed
                    : throw new SerializationException($"A {value?.GetType().Name ?? "null"} arrived where a {typeof(T).Name} was expected.");
            default:
                var codec = Exact ?? throw CodecRegistry.NoCodec(typeof(T));
                return codec.ReadValue(ref reader, wireType);
        }
    }

    /// <summary>Reads a whole field (header and value).</summary>
    public static T ReadField(ref Reader reader)
    {
        var (_, wireType) = reader.ReadFieldHeader();
        return ReadValue(ref reader, wireType);
    }
}

/// <summary>Finds the codec of a type: built-in, generated, or a generic family; and handles values written by runtime type.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static partial class CodecRegistry
{
    private const int MaxTypeNameLength = 2048;
    private static readonly ConcurrentDictionary<Type, IBoxedCodec> Boxed = new();
    private static readonly ConcurrentDictionary<Type, string> NamesByType = new();
    private static readonly ConcurrentDictionary<string, Type> TypesByName = new(StringComparer.Ordinal);

    /// <summary>The codec of exactly <typeparamref name="T"/>, or null when it has none.</summary>
    internal static IFieldCodec<T>? Resolve<T>()
    {
        var type = typeof(T);
        if (BuiltInCodecs.Find(type) is { } builtIn)
        {
            return (IFieldCodec<T>)builtIn;
        }

        if (Metadata.GeneratedCodeRegistry.FindCodec(type) is { } generated)
        {
            return (IFieldCodec<T>)generated;
        }

        return (IFieldCodec<T>?)BuiltInCodecs.CreateForFamily(type);
    }

    internal static CodecNotFoundException NoCodec(Type type) =>
        new($"No serializer for type {type.FullName}: mark it [GenerateSerializer] (with [Id] on its members) so it can cross process boundaries.");

    /// <summary>Whether values of exactly this runtime type can be written.</summary>
    public static bool IsSerializable(Type type) => GetBoxed(type).IsSupported;

    internal static void WritePolymorphic(ref Writer writer, uint fieldId, object value)
    {
        var type = value.GetType();
        var boxed = GetBoxed(type);
        if (!boxed.IsSupported)
        {
            throw NoCodec(type);
        }

        writer.WriteFieldHeader(fieldId, WireType.Polymorphic);
        writer.WriteStringBody(NameOf(type));
        boxed.WriteField(ref writer, 0, value);
    }

    internal static object? ReadPolymorphic(ref Reader reader)
    {
        var nameBytes = reader.ReadLengthPrefixed();
        if (nameBytes.Length > MaxTypeNameLength)
        {
            throw new SerializationException($"A type name of {nameBytes.Length} bytes is longer than the {MaxTypeNameLength} allowed.");
        }

        var type = TypeOf(System.Text.Encoding.UTF8.GetString(nameBytes));
        var (_, wireType) = reader.ReadFieldHeader();
        reader.EnterNested();
        var value = GetBoxed(type).ReadValue(ref reader, wireType);
        reader.ExitNested();
        return value;
    }

    /// <summary>A type's name on the wire: assembly-qualified without version, culture or key.</summary>
    public static string NameOf(Type type) =>
        NamesByType.GetOrAdd(type, static t => VersionInfo().Replace(t.AssemblyQualifiedName ?? t.FullName ?? t.Name, ""));

    /// <summary>The type a wire name denotes; only types with a codec are accepted.</summary>
    public static Type TypeOf(string name)
    {
        if (TypesByName.TryGetValue(name, out var known))
        {
            return known;
        }

        Type? type;
        bool supported;
        try
        {
            type = Type.GetType(name, throwOnError: false);
            supported = type is not null && !type.ContainsGenericParameters && !type.IsByRefLike && !type.IsPointer && GetBoxed(type).IsSupported;
        }
        catch (Exception error) when (error is ArgumentException or TypeLoadException or FileLoadException or BadImageFormatException or TypeInitializationException)
        {
            throw new SerializationException($"Type '{name}' in serialized data cannot be used: {error.Message}");
        }

        if (type is null)
        {
            throw new SerializationException($"Unknown type '{name}' in serialized data (is its assembly deployed here?).");
        }

        if (!supported)
        {
            throw new SerializationException($"Type '{name}' in serialized data is not serializable.");
        }

        TypesByName[name] = type;
        return type;
    }

    private static IBoxedCodec GetBoxed(Type type) =>
        Boxed.GetOrAdd(type, static t => (IBoxedCodec)Activator.CreateInstance(typeof(BoxedCodec<>).MakeGenericType(t))!);

    [GeneratedRegex(@", (Version|Culture|PublicKeyToken)=[^,\]]+")]
    private static partial Regex VersionInfo();

    private interface IBoxedCodec
    {
        bool IsSupported { get; }

        void WriteField(ref Writer writer, uint fieldId, object value);

        object? ReadValue(ref Reader reader, WireType wireType);
    }

    private sealed class BoxedCodec<T> : IBoxedCodec
    {
        public bool IsSupported => Codec<T>.IsSupported;

        public void WriteField(ref Writer writer, uint fieldId, object value) => Codec<T>.WriteField(ref writer, fieldId, (T)value);

        public object? ReadValue(ref Reader reader, WireType wireType) => Codec<T>.ReadValue(ref reader, wireType);
    }
}

/// <summary>Serializes whole values: what grain state stores and what tests use.</summary>
public static class LiflSerializer
{
    public static void Serialize<T>(T value, System.Buffers.IBufferWriter<byte> output, SerializerSession? session = null)
    {
        var writer = new Writer(output, session);
        Codec<T>.WriteField(ref writer, 0, value);
        writer.Commit();
    }

    public static byte[] SerializeToArray<T>(T value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        Serialize(value, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    public static T Deserialize<T>(ReadOnlySpan<byte> bytes, SerializerSession? session = null)
    {
        var reader = new Reader(bytes, session);
        var value = Codec<T>.ReadField(ref reader);
        if (!reader.IsAtEnd)
        {
            throw new SerializationException($"{reader.Remaining} unexpected bytes after a serialized {typeof(T).Name}.");
        }

        return value;
    }
}
