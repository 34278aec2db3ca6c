namespace Orleans.LIFL.Invocation;

[Flags]
public enum InvokeMethodOptions
{
    None = 0,
    OneWay = 1,
    ReadOnly = 2,
    AlwaysInterleave = 4,
}

/// <summary>Facts about one grain interface method, shared by every call of it. Emitted by the code generator.</summary>
public sealed class MethodDescriptor
{
    public MethodDescriptor(Type interfaceType, string name, string id, InvokeMethodOptions options, TimeSpan? responseTimeout)
    {
        InterfaceType = interfaceType;
        Name = name;
        Id = id;
        Options = options;
        ResponseTimeout = responseTimeout;
        FullName = $"{interfaceType.Name}.{name}";
        WireId = StableHash.Fnv1a(id);
    }

    /// <summary>The method's number on the wire: a stable hash of <see cref="Id"/> (collisions are refused at load).</summary>
    public uint WireId { get; }

    public Type InterfaceType { get; }

    public string Name { get; }

    /// <summary>A name for the method that is stable across processes: interface, method and parameter types.</summary>
    public string Id { get; }

    /// <summary>"IInterface.Method", for errors and statistics.</summary>
    public string FullName { get; }

    public InvokeMethodOptions Options { get; }

    public TimeSpan? ResponseTimeout { get; }

    public bool IsOneWay => (Options & InvokeMethodOptions.OneWay) != 0;

    public bool IsReadOnly => (Options & InvokeMethodOptions.ReadOnly) != 0;

    public bool IsAlwaysInterleave => (Options & InvokeMethodOptions.AlwaysInterleave) != 0;

    public override string ToString() => FullName;
}

/// <summary>The result type of calls whose method returns a plain <see cref="Task"/> or <see cref="ValueTask"/>.</summary>
public readonly struct Unit;
