using System.Collections.Concurrent;
using System.ComponentModel;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace Orleans.LIFL.Serialization;

/// <summary>Copies values of one type so that no mutable object is shared between the original and the copy.</summary>
public interface IDeepCopier<T>
{
    T DeepCopy(T original);
}

/// <summary>Deep copies of <typeparamref name="T"/>. Immutable types are returned as they are.</summary>
public static class DeepCopier<T>
{
    private static readonly IDeepCopier<T>? Exact = CopierRegistry.Resolve<T>();

    /// <summary>True when values of exactly this type are passed without copying.</summary>
    public static bool IsShallow { get; } = Exact is null && CopierRegistry.IsShallow(typeof(T));

    public static T Copy(T value)
    {
        if (IsShallow || value is null)
        {
            return value;
        }

        if (typeof(T).IsValueType || typeof(T).IsSealed || value.GetType() == typeof(T))
        {
            return Exact is not null ? Exact.DeepCopy(value) : throw CopierRegistry.NoCopier(typeof(T));
        }

        return (T)CopierRegistry.CopyObject(value);
    }
}

/// <summary>Guards generated and built-in copiers of reference types against cyclic or absurdly deep graphs, which
/// would otherwise overflow the stack and take the process down.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class CopyDepth
{
    public const int Limit = 1000;

    [ThreadStatic]
#pragma warning disable IDE1006 // [ThreadStatic] fields are t_camelCase (dotnet/runtime convention)
    private static int t_depth;
#pragma warning restore IDE1006

    public static Scope Enter(Type type)
    {
        if (++t_depth > Limit)
        {
            t_depth--;
            throw new InvalidOperationException(
                $"Copying an object graph more than {Limit} levels deep (at {type.Name}); grain arguments must be trees, not cyclic graphs.");
        }

        return default;
    }

    public readonly struct Scope : IDisposable
    {
        public void Dispose() => t_depth--;
    }
}

/// <summary>Finds the copier for a type: generated ones, the built-in collection copiers, or none for immutable types.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class CopierRegistry
{
    private static readonly ConcurrentDictionary<Type, Func<object, object>> ByRuntimeType = new();
    private static readonly ConcurrentDictionary<Type, bool> ShallowCache = new();

    private static readonly HashSet<Type> KnownShallow =
    [
        typeof(string), typeof(decimal), typeof(DateTime), typeof(DateTimeOffset), typeof(TimeSpan), typeof(Guid),
        typeof(DateOnly), typeof(TimeOnly), typeof(Half), typeof(Int128), typeof(UInt128), typeof(Uri), typeof(Version),
        typeof(Invocation.Unit), typeof(System.Net.IPAddress), typeof(System.Net.IPEndPoint), typeof(SiloAddress), typeof(GrainId), typeof(GrainType),
        typeof(System.Numerics.BigInteger), typeof(CancellationToken),
    ];

    private static readonly Dictionary<Type, Type> BuiltInGeneric = new()
    {
        [typeof(List<>)] = typeof(ListCopier<>),
        [typeof(Dictionary<,>)] = typeof(DictionaryCopier<,>),
        [typeof(HashSet<>)] = typeof(HashSetCopier<>),
        [typeof(Queue<>)] = typeof(QueueCopier<>),
        [typeof(SortedDictionary<,>)] = typeof(SortedDictionaryCopier<,>),
        [typeof(KeyValuePair<,>)] = typeof(KeyValuePairCopier<,>),
        [typeof(Nullable<>)] = typeof(NullableCopier<>),
        [typeof(ValueTuple<,>)] = typeof(ValueTupleCopier<,>),
        [typeof(ValueTuple<,,>)] = typeof(ValueTupleCopier<,,>),
        [typeof(Tuple<,>)] = typeof(TupleCopier<,>),
        [typeof(Tuple<,,>)] = typeof(TupleCopier<,,>),
        [typeof(System.Collections.Immutable.ImmutableArray<>)] = typeof(ImmutableArrayCopier<>),
        [typeof(Memory<>)] = typeof(MemoryCopier<>),
        [typeof(ReadOnlyMemory<>)] = typeof(ReadOnlyMemoryCopier<>),
    };

    /// <summary>The copier of exactly <typeparamref name="T"/>, or null when it is immutable or has none.</summary>
    internal static IDeepCopier<T>? Resolve<T>()
    {
        var type = typeof(T);
        if (IsShallow(type))
        {
            return null;
        }

        if (Metadata.GeneratedCodeRegistry.FindCopier(type) is { } generated)
        {
            return (IDeepCopier<T>)generated;
        }

        if (type == typeof(Dataplane.SharedBuffer))
        {
            return (IDeepCopier<T>)(object)new SharedBufferCopier();
        }

        if (type.IsSZArray)
        {
            return (IDeepCopier<T>)Activator.CreateInstance(typeof(ArrayCopier<>).MakeGenericType(type.GetElementType()!))!;
        }

        if (type.IsGenericType && BuiltInGeneric.TryGetValue(type.GetGenericTypeDefinition(), out var copierDefinition))
        {
            return (IDeepCopier<T>)Activator.CreateInstance(copierDefinition.MakeGenericType(type.GetGenericArguments()))!;
        }

        return null;
    }

    /// <summary>Whether values whose runtime type is exactly <paramref name="type"/> can be shared instead of copied.</summary>
    public static bool IsShallow(Type type) => ShallowCache.GetOrAdd(type, ComputeShallow);

    private static bool ComputeShallow(Type type)
    {
        if (type.IsPrimitive || type.IsEnum || KnownShallow.Contains(type) || type.IsPointer)
        {
            return true;
        }

        if (type.IsDefined(typeof(ImmutableAttribute), inherit: false))
        {
            return true;
        }

        // Grain references are immutable; exceptions are passed as they are (their type and message reach the caller).
        if (typeof(IAddressable).IsAssignableFrom(type) || typeof(Exception).IsAssignableFrom(type) || typeof(Type).IsAssignableFrom(type))
        {
            return true;
        }

        if (type.IsGenericType)
        {
            var definition = type.GetGenericTypeDefinition();
            var arguments = type.GetGenericArguments();
            if (definition == typeof(Immutable<>))
            {
                return true;
            }

            if (definition == typeof(Nullable<>) || definition == typeof(KeyValuePair<,>) || definition.FullName!.StartsWith("System.ValueTuple`", StringComparison.Ordinal)
                || (definition.Namespace == "System.Collections.Immutable" && definition != typeof(System.Collections.Immutable.ImmutableArray<>)))
            {
                return arguments.All(IsShallow);
            }

            if (definition == typeof(System.Collections.Immutable.ImmutableArray<>))
            {
                return IsShallow(arguments[0]);
            }
        }

        return false;
    }

    /// <summary>Copies a value whose static type is a base class or interface, using its runtime type's copier.</summary>
    public static object CopyObject(object value)
    {
        var type = value.GetType();
        if (IsShallow(type))
        {
            return value;
        }

        return ByRuntimeType.GetOrAdd(type, static t =>
        {
            var method = typeof(CopierRegistry).GetMethod(nameof(CopyBoxed), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(t);
            return method.CreateDelegate<Func<object, object>>();
        })(value);
    }

    private static object CopyBoxed<T>(object value) => DeepCopier<T>.Copy((T)value)!;

    internal static CodecNotFoundException NoCopier(Type type)
    {
        var hint = typeof(Delegate).IsAssignableFrom(type)
            ? "delegates cannot be passed to grains"
            : "mark it [GenerateSerializer] (with [Id] on its members) or [Immutable]";
        return new CodecNotFoundException($"No copier for type {type.FullName}: {hint}.");
    }

    internal static bool IsShallow<T>() => DeepCopier<T>.IsShallow;
}

internal sealed class ArrayCopier<T> : IDeepCopier<T[]>
{
    public T[] DeepCopy(T[] original)
    {
        if (original.Length == 0)
        {
            return [];
        }

        if (DeepCopier<T>.IsShallow)
        {
            return (T[])original.Clone();
        }

        using var depth = CopyDepth.Enter(typeof(T[]));
        var copy = new T[original.Length];
        for (var i = 0; i < copy.Length; i++)
        {
            copy[i] = DeepCopier<T>.Copy(original[i]);
        }

        return copy;
    }
}

internal sealed class ListCopier<T> : IDeepCopier<List<T>>
{
    public List<T> DeepCopy(List<T> original)
    {
        if (DeepCopier<T>.IsShallow)
        {
            return new List<T>(original);
        }

        using var depth = CopyDepth.Enter(typeof(List<T>));
        var copy = new List<T>(original.Count);
        foreach (var item in original)
        {
            copy.Add(DeepCopier<T>.Copy(item));
        }

        return copy;
    }
}

internal sealed class DictionaryCopier<TKey, TValue> : IDeepCopier<Dictionary<TKey, TValue>>
    where TKey : notnull
{
    public Dictionary<TKey, TValue> DeepCopy(Dictionary<TKey, TValue> original)
    {
        using var depth = CopyDepth.Enter(typeof(Dictionary<TKey, TValue>));
        var copy = new Dictionary<TKey, TValue>(original.Count, original.Comparer);
        foreach (var (key, value) in original)
        {
            copy.Add(DeepCopier<TKey>.Copy(key), DeepCopier<TValue>.Copy(value));
        }

        return copy;
    }
}

internal sealed class SortedDictionaryCopier<TKey, TValue> : IDeepCopier<SortedDictionary<TKey, TValue>>
    where TKey : notnull
{
    public SortedDictionary<TKey, TValue> DeepCopy(SortedDictionary<TKey, TValue> original)
    {
        using var depth = CopyDepth.Enter(typeof(SortedDictionary<TKey, TValue>));
        var copy = new SortedDictionary<TKey, TValue>(original.Comparer);
        foreach (var (key, value) in original)
        {
            copy.Add(DeepCopier<TKey>.Copy(key), DeepCopier<TValue>.Copy(value));
        }

        return copy;
    }
}

internal sealed class HashSetCopier<T> : IDeepCopier<HashSet<T>>
{
    public HashSet<T> DeepCopy(HashSet<T> original)
    {
        using var depth = CopyDepth.Enter(typeof(HashSet<T>));
        var copy = new HashSet<T>(original.Count, original.Comparer);
        foreach (var item in original)
        {
            copy.Add(DeepCopier<T>.Copy(item));
        }

        return copy;
    }
}

internal sealed class QueueCopier<T> : IDeepCopier<Queue<T>>
{
    public Queue<T> DeepCopy(Queue<T> original)
    {
        using var depth = CopyDepth.Enter(typeof(Queue<T>));
        var copy = new Queue<T>(original.Count);
        foreach (var item in original)
        {
            copy.Enqueue(DeepCopier<T>.Copy(item));
        }

        return copy;
    }
}

internal sealed class KeyValuePairCopier<TKey, TValue> : IDeepCopier<KeyValuePair<TKey, TValue>>
{
    public KeyValuePair<TKey, TValue> DeepCopy(KeyValuePair<TKey, TValue> original) =>
        new(DeepCopier<TKey>.Copy(original.Key), DeepCopier<TValue>.Copy(original.Value));
}

internal sealed class NullableCopier<T> : IDeepCopier<T?>
    where T : struct
{
    public T? DeepCopy(T? original) => original is { } value ? DeepCopier<T>.Copy(value) : null;
}

internal sealed class ValueTupleCopier<T1, T2> : IDeepCopier<ValueTuple<T1, T2>>
{
    public (T1, T2) DeepCopy((T1, T2) original) => (DeepCopier<T1>.Copy(original.Item1), DeepCopier<T2>.Copy(original.Item2));
}

internal sealed class ValueTupleCopier<T1, T2, T3> : IDeepCopier<ValueTuple<T1, T2, T3>>
{
    public (T1, T2, T3) DeepCopy((T1, T2, T3) original) =>
        (DeepCopier<T1>.Copy(original.Item1), DeepCopier<T2>.Copy(original.Item2), DeepCopier<T3>.Copy(original.Item3));
}

internal sealed class TupleCopier<T1, T2> : IDeepCopier<Tuple<T1, T2>>
{
    public Tuple<T1, T2> DeepCopy(Tuple<T1, T2> original) => Tuple.Create(DeepCopier<T1>.Copy(original.Item1), DeepCopier<T2>.Copy(original.Item2));
}

internal sealed class TupleCopier<T1, T2, T3> : IDeepCopier<Tuple<T1, T2, T3>>
{
    public Tuple<T1, T2, T3> DeepCopy(Tuple<T1, T2, T3> original) =>
        Tuple.Create(DeepCopier<T1>.Copy(original.Item1), DeepCopier<T2>.Copy(original.Item2), DeepCopier<T3>.Copy(original.Item3));
}

internal sealed class ImmutableArrayCopier<T> : IDeepCopier<System.Collections.Immutable.ImmutableArray<T>>
{
    public System.Collections.Immutable.ImmutableArray<T> DeepCopy(System.Collections.Immutable.ImmutableArray<T> original)
    {
        if (original.IsDefault)
        {
            return original;
        }

        var builder = System.Collections.Immutable.ImmutableArray.CreateBuilder<T>(original.Length);
        foreach (var item in original)
        {
            builder.Add(DeepCopier<T>.Copy(item));
        }

        return builder.MoveToImmutable();
    }
}

internal sealed class MemoryCopier<T> : IDeepCopier<Memory<T>>
{
    public Memory<T> DeepCopy(Memory<T> original) => MemoryCopy.ToArray<T>(original.Span);
}

internal sealed class ReadOnlyMemoryCopier<T> : IDeepCopier<ReadOnlyMemory<T>>
{
    public ReadOnlyMemory<T> DeepCopy(ReadOnlyMemory<T> original) => MemoryCopy.ToArray(original.Span);
}

internal static class MemoryCopy
{
    public static T[] ToArray<T>(ReadOnlySpan<T> source)
    {
        var copy = source.ToArray();
        if (!DeepCopier<T>.IsShallow)
        {
            for (var i = 0; i < copy.Length; i++)
            {
                copy[i] = DeepCopier<T>.Copy(copy[i]);
            }
        }

        return copy;
    }
}

/// <summary>Used by generated copiers to create the copy of a class without running its constructor.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class CopierHelpers
{
    public static T CreateUninitialized<T>()
        where T : class => (T)RuntimeHelpers.GetUninitializedObject(typeof(T));
}

/// <summary>
/// Within a process the receiver of a shared buffer gets its own reference to the same bytes (or the sender's
/// handle itself, when the sender moved it: <see cref="Dataplane.SharedBuffer.MoveToCaller"/>).
/// </summary>
internal sealed class SharedBufferCopier : IDeepCopier<Dataplane.SharedBuffer>
{
    public Dataplane.SharedBuffer DeepCopy(Dataplane.SharedBuffer original) => original.CopyForReceiver();
}
