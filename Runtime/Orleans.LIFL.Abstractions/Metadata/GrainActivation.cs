using System.ComponentModel;

namespace Orleans.LIFL.Metadata;

/// <summary>Resolves grain constructor dependencies for generated factories, with an error that names the grain.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class GrainActivation
{
    public static T GetService<T>(IServiceProvider services, Type grainClass)
    {
        if (services.GetService(typeof(T)) is T service)
        {
            return service;
        }

        throw new InvalidOperationException(
            $"Cannot create grain {grainClass.Name}: its constructor needs {typeof(T).FullName}, which is not registered in the silo's services.");
    }
}
