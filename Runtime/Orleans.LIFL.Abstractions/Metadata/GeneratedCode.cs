using System.ComponentModel;
using System.Reflection;
using Orleans.LIFL.Invocation;
using Orleans.LIFL.Serialization;

namespace Orleans.LIFL.Metadata;

/// <summary>Names the type, generated into an assembly, that registers the assembly's proxies, copiers and grain classes.</summary>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = true)]
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class LiflGeneratedCodeAttribute : Attribute
{
    public LiflGeneratedCodeAttribute(Type providerType)
    {
        ProviderType = providerType;
    }

    public Type ProviderType { get; }
}

/// <summary>Implemented by the generated provider of each assembly.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IGeneratedCodeProvider
{
    void Register(IGeneratedCodeRegistrar registrar);
}

/// <summary>What generated code registers.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IGeneratedCodeRegistrar
{
    void AddProxy(Type interfaceType, Func<GrainId, IGrainCallRuntime, GrainReference> factory);

    void AddCopier<T>(IDeepCopier<T> copier);

    /// <summary>A copier for a generic type: <paramref name="copierDefinition"/> is closed over the same arguments.</summary>
    void AddGenericCopier(Type typeDefinition, Type copierDefinition);

    void AddGrainClass(GrainClassDescriptor descriptor);

    void AddCodec<T>(IFieldCodec<T> codec);

    /// <summary>A codec for a generic type: <paramref name="codecDefinition"/> is closed over the same arguments.</summary>
    void AddGenericCodec(Type typeDefinition, Type codecDefinition);

    /// <summary>How to create an empty request of a method, to read its arguments from the wire.</summary>
    void AddInvokable(MethodDescriptor method, Func<RequestBase> factory);
}

/// <summary>A grain class: its interfaces and a constructor call with its dependencies resolved.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public sealed class GrainClassDescriptor
{
    public GrainClassDescriptor(Type grainClass, Type[] interfaces, Func<IServiceProvider, IGrainContext, object> factory)
    {
        GrainClass = grainClass;
        Interfaces = interfaces;
        Factory = factory;
    }

    public Type GrainClass { get; }

    /// <summary>The grain interfaces it implements (not grain extensions).</summary>
    public IReadOnlyList<Type> Interfaces { get; }

    public Func<IServiceProvider, IGrainContext, object> Factory { get; }
}

/// <summary>
/// The process-wide table of generated code, filled per assembly on first need. Proxies and copiers are pure, so one
/// table serves every silo and client in the process; grain classes are chosen per silo from it.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class GeneratedCodeRegistry
{
    private static readonly Lock Gate = new();
    private static readonly HashSet<Assembly> Loaded = [];
    private static readonly Dictionary<Type, Func<GrainId, IGrainCallRuntime, GrainReference>> Proxies = [];
    private static readonly Dictionary<Type, object> Copiers = [];
    private static readonly Dictionary<Type, Type> GenericCopiers = [];
    private static readonly Dictionary<Type, GrainClassDescriptor> GrainClasses = [];
    private static readonly Dictionary<Type, object> Codecs = [];
    private static readonly Dictionary<Type, Type> GenericCodecs = [];
    private static readonly Dictionary<uint, (MethodDescriptor Method, Func<RequestBase> Factory)> Invokables = [];

    /// <summary>Loads the generated code of <paramref name="assembly"/> (once).</summary>
    public static void EnsureLoaded(Assembly assembly)
    {
        ArgumentNullException.ThrowIfNull(assembly);
        lock (Gate)
        {
            if (!Loaded.Add(assembly))
            {
                return;
            }

            var registrar = new Registrar();
            foreach (var attribute in assembly.GetCustomAttributes<LiflGeneratedCodeAttribute>())
            {
                var provider = (IGeneratedCodeProvider)Activator.CreateInstance(attribute.ProviderType)!;
                provider.Register(registrar);
            }
        }
    }

    public static Func<GrainId, IGrainCallRuntime, GrainReference>? FindProxy(Type interfaceType)
    {
        EnsureLoaded(interfaceType.Assembly);
        lock (Gate)
        {
            return Proxies.GetValueOrDefault(interfaceType);
        }
    }

    public static object? FindCopier(Type type)
    {
        EnsureLoaded(type.Assembly);
        lock (Gate)
        {
            if (Copiers.TryGetValue(type, out var copier))
            {
                return copier;
            }

            if (type.IsGenericType && GenericCopiers.TryGetValue(type.GetGenericTypeDefinition(), out var definition))
            {
                copier = Activator.CreateInstance(definition.MakeGenericType(type.GetGenericArguments()))!;
                Copiers[type] = copier;
                return copier;
            }

            return null;
        }
    }

    public static object? FindCodec(Type type)
    {
        EnsureLoaded(type.Assembly);
        lock (Gate)
        {
            if (Codecs.TryGetValue(type, out var codec))
            {
                return codec;
            }

            if (type.IsGenericType && GenericCodecs.TryGetValue(type.GetGenericTypeDefinition(), out var definition))
            {
                codec = Activator.CreateInstance(definition.MakeGenericType(type.GetGenericArguments()))!;
                Codecs[type] = codec;
                return codec;
            }

            return null;
        }
    }

    /// <summary>An empty request for the method with this wire id, or null if no loaded assembly declares it.</summary>
    public static RequestBase? CreateRequest(uint methodWireId)
    {
        lock (Gate)
        {
            return Invokables.TryGetValue(methodWireId, out var entry) ? entry.Factory() : null;
        }
    }

    /// <summary>The grain classes generated into the given assemblies.</summary>
    public static IReadOnlyList<GrainClassDescriptor> GetGrainClasses(IEnumerable<Assembly> assemblies)
    {
        var set = assemblies.ToHashSet();
        foreach (var assembly in set)
        {
            EnsureLoaded(assembly);
        }

        lock (Gate)
        {
            return GrainClasses.Values.Where(d => set.Contains(d.GrainClass.Assembly)).ToList();
        }
    }

    /// <summary>Whether the assembly carries generated code (used when scanning for application parts).</summary>
    public static bool HasGeneratedCode(Assembly assembly) => assembly.IsDefined(typeof(LiflGeneratedCodeAttribute), inherit: false);

    private sealed class Registrar : IGeneratedCodeRegistrar
    {
        public void AddProxy(Type interfaceType, Func<GrainId, IGrainCallRuntime, GrainReference> factory) => Proxies[interfaceType] = factory;

        public void AddCopier<T>(IDeepCopier<T> copier) => Copiers[typeof(T)] = copier!;

        public void AddGenericCopier(Type typeDefinition, Type copierDefinition) => GenericCopiers[typeDefinition] = copierDefinition;

        public void AddGrainClass(GrainClassDescriptor descriptor) => GrainClasses[descriptor.GrainClass] = descriptor;

        public void AddCodec<T>(IFieldCodec<T> codec) => Codecs[typeof(T)] = codec!;

        public void AddGenericCodec(Type typeDefinition, Type codecDefinition) => GenericCodecs[typeDefinition] = codecDefinition;

        public void AddInvokable(MethodDescriptor method, Func<RequestBase> factory)
        {
            if (Invokables.TryGetValue(method.WireId, out var existing))
            {
                if (existing.Method.Id != method.Id)
                {
                    throw new InvalidOperationException(
                        $"Grain methods {existing.Method.Id} and {method.Id} have the same wire id {method.WireId}; rename one of them.");
                }

                return;
            }

            Invokables[method.WireId] = (method, factory);
        }
    }
}
