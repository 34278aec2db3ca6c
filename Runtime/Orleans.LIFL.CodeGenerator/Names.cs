namespace Orleans.LIFL.CodeGenerator;

internal static class Names
{
    public const string Addressable = "Orleans.LIFL.IAddressable";
    public const string Grain = "Orleans.LIFL.IGrain";
    public const string GrainExtension = "Orleans.LIFL.IGrainExtension";
    public const string GrainObserver = "Orleans.LIFL.IGrainObserver";
    public const string GrainBase = "Orleans.LIFL.Grain";
    public const string GrainContext = "Orleans.LIFL.IGrainContext";
    public const string OneWay = "Orleans.LIFL.Concurrency.OneWayAttribute";
    public const string ReadOnly = "Orleans.LIFL.Concurrency.ReadOnlyAttribute";
    public const string AlwaysInterleave = "Orleans.LIFL.Concurrency.AlwaysInterleaveAttribute";
    public const string ResponseTimeout = "Orleans.LIFL.Concurrency.ResponseTimeoutAttribute";
    public const string GenerateSerializer = "Orleans.LIFL.Serialization.GenerateSerializerAttribute";
    public const string Id = "Orleans.LIFL.Serialization.IdAttribute";
    public const string Immutable = "Orleans.LIFL.Serialization.ImmutableAttribute";
    public const string ImmutableWrapper = "Orleans.LIFL.Serialization.Immutable`1";
    public const string PersistentState = "Orleans.LIFL.Persistence.PersistentStateAttribute";
    public const string ActivatorUtilitiesConstructor = "Microsoft.Extensions.DependencyInjection.ActivatorUtilitiesConstructorAttribute";

    /// <summary>Marker interfaces of the programming model: not grain interfaces a class is looked up by.</summary>
    public static bool IsMarker(string metadataName) => metadataName is
        "Orleans.LIFL.IAddressable" or "Orleans.LIFL.IGrain" or "Orleans.LIFL.IGrainWithGuidKey"
        or "Orleans.LIFL.IGrainWithIntegerKey" or "Orleans.LIFL.IGrainWithStringKey"
        or "Orleans.LIFL.IGrainObserver" or "Orleans.LIFL.IGrainExtension";
}
