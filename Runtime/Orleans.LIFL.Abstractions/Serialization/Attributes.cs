namespace Orleans.LIFL.Serialization;

/// <summary>
/// The code generator emits a deep copier (and, for the cluster transport, a serializer) for this type. Members to
/// carry are marked with <see cref="IdAttribute"/>; the others are left at their default value in copies.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct, Inherited = false)]
public sealed class GenerateSerializerAttribute : Attribute;

/// <summary>A member carried by copies and by the wire format; the id must be unique within the declaring type and
/// must never be reused for a different member.</summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property)]
public sealed class IdAttribute : Attribute
{
    public IdAttribute(uint id)
    {
        Id = id;
    }

    public uint Id { get; }
}

/// <summary>
/// Instances of this type are never changed after construction, so grain calls pass them without copying.
/// Marking a mutable type immutable lets a callee change the caller's object: only use it when it is true.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct, Inherited = false)]
public sealed class ImmutableAttribute : Attribute;

/// <summary>Wraps a value the caller promises not to change, so it is passed without copying.</summary>
[Immutable]
public readonly struct Immutable<T>
{
    public Immutable(T value)
    {
        Value = value;
    }

    public T Value { get; }
}

public static class ImmutableExtensions
{
    public static Immutable<T> AsImmutable<T>(this T value) => new(value);
}
