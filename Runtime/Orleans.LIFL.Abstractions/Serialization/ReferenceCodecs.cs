using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.ExceptionServices;
using Orleans.LIFL.Invocation;

namespace Orleans.LIFL.Serialization;

/// <summary>
/// A grain reference as its identity and interface. It is rebuilt in the receiving process bound to that process's
/// runtime, so calls through it go out from there.
/// </summary>
internal sealed class GrainReferenceCodec<T> : IFieldCodec<T>, ISubtypeCodec
{
    private static readonly bool DeclaredIsGrainInterface =
        typeof(T).IsInterface && typeof(T) != typeof(IAddressable) && typeof(T) != typeof(IGrain)
        && Metadata.GeneratedCodeRegistry.FindProxy(typeof(T)) is not null;

    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, T value)
    {
        if (value is not GrainReference reference)
        {
            throw new SerializationException(
                $"A {value!.GetType().Name} object was passed where a grain reference ({typeof(T).Name}) was expected: pass AsReference<{typeof(T).Name}>() instead of the grain itself.");
        }

        Codec<GrainId>.WriteField(ref writer, 0, reference.GrainId);
        Codec<string>.WriteField(ref writer, 1, CodecRegistry.NameOf(reference.InterfaceType));
        writer.WriteEndTag();
    }

    public T ReadValue(ref Reader reader, WireType wireType)
    {
        var fields = new TagReader(ref reader, wireType, "grain reference");
        GrainId grainId = default;
        string? interfaceName = null;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            switch (id)
            {
                case 0: grainId = Codec<GrainId>.ReadValue(ref reader, wire); break;
                case 1: interfaceName = Codec<string>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        var runtime = reader.Session?.Runtime
            ?? throw new SerializationException("A grain reference can only be deserialized inside a silo or client runtime.");
        if (grainId.IsDefault)
        {
            throw new SerializationException("A grain reference without a grain id.");
        }

        var interfaceType = DeclaredIsGrainInterface ? typeof(T) : ResolveInterface(interfaceName);
        var factory = Metadata.GeneratedCodeRegistry.FindProxy(interfaceType)
            ?? throw new SerializationException($"No proxy for grain interface {interfaceType.FullName} in this process.");
        return factory(grainId, runtime) is T typed
            ? typed
            : throw new SerializationException($"A reference of {interfaceType.Name} arrived where a {typeof(T).Name} was expected.");
    }

    private static Type ResolveInterface(string? name)
    {
        var type = name is null ? null : Type.GetType(name, throwOnError: false);
        return type is { IsInterface: true } && typeof(IAddressable).IsAssignableFrom(type)
            ? type
            : throw new SerializationException($"Unknown grain interface '{name}' in a serialized grain reference.");
    }
}

/// <summary>
/// An exception as its type name, message, stack trace and inner exception. It is rebuilt with the same type when
/// that type is available here and has a (message) constructor; otherwise as a <see cref="RemoteGrainException"/>.
/// </summary>
internal sealed class ExceptionCodec<T> : IFieldCodec<T>, ISubtypeCodec
    where T : Exception
{
    private static readonly ConcurrentDictionary<Type, Func<string, Exception?, Exception>?> Constructors = new();

    public WireType WireType => WireType.TagDelimited;

    public void WriteValue(ref Writer writer, T value)
    {
        Codec<string>.WriteField(ref writer, 0, CodecRegistry.NameOf(value.GetType()));
        Codec<string>.WriteField(ref writer, 1, value.Message);
        Codec<string>.WriteField(ref writer, 2, value.StackTrace ?? "");
        if (value.InnerException is { } inner)
        {
            Codec<Exception>.WriteField(ref writer, 3, inner);
        }

        writer.WriteEndTag();
    }

    public T ReadValue(ref Reader reader, WireType wireType)
    {
        var fields = new TagReader(ref reader, wireType, "exception");
        string typeName = "unknown";
        var message = "";
        var stackTrace = "";
        Exception? inner = null;
        while (fields.Next(ref reader, out var id, out var wire))
        {
            switch (id)
            {
                case 0: typeName = Codec<string>.ReadValue(ref reader, wire); break;
                case 1: message = Codec<string>.ReadValue(ref reader, wire); break;
                case 2: stackTrace = Codec<string>.ReadValue(ref reader, wire); break;
                case 3: inner = Codec<Exception>.ReadValue(ref reader, wire); break;
                default: reader.SkipField(wire); break;
            }
        }

        var exception = Rebuild(typeName, message, inner);
        if (stackTrace.Length > 0)
        {
            ExceptionDispatchInfo.SetRemoteStackTrace(exception, stackTrace);
        }

        return exception as T ?? (T)(Exception)new RemoteGrainException(typeName, message);
    }

    private static Exception Rebuild(string typeName, string message, Exception? inner)
    {
        Type? type;
        try
        {
            type = Type.GetType(typeName, throwOnError: false);
        }
        catch (Exception error) when (error is ArgumentException or TypeLoadException or FileLoadException or BadImageFormatException)
        {
            type = null;
        }

        if (type is null || !typeof(Exception).IsAssignableFrom(type) || type.IsAbstract)
        {
            return new RemoteGrainException(typeName, message);
        }

        var constructor = Constructors.GetOrAdd(type, FindConstructor);
        try
        {
            return constructor?.Invoke(message, inner) ?? new RemoteGrainException(typeName, message);
        }
        catch (Exception)
        {
            return new RemoteGrainException(typeName, message);
        }
    }

    private static Func<string, Exception?, Exception>? FindConstructor(Type type)
    {
        if (type.GetConstructor([typeof(string), typeof(Exception)]) is { } withInner)
        {
            return (message, inner) => (Exception)withInner.Invoke([message, inner]);
        }

        if (type.GetConstructor([typeof(string)]) is { } plain)
        {
            return (message, _) => (Exception)plain.Invoke([message]);
        }

        return null;
    }
}
