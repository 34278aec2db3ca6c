namespace Orleans.LIFL;

/// <summary>Marker for everything a grain reference can point at: grains, observers and grain extensions.</summary>
public interface IAddressable;

/// <summary>Marker for grain interfaces. Use one of the keyed interfaces below.</summary>
public interface IGrain : IAddressable;

/// <summary>A grain whose identity is a <see cref="Guid"/>.</summary>
public interface IGrainWithGuidKey : IGrain;

/// <summary>A grain whose identity is a 64-bit integer.</summary>
public interface IGrainWithIntegerKey : IGrain;

/// <summary>A grain whose identity is a string.</summary>
public interface IGrainWithStringKey : IGrain;

/// <summary>
/// An object outside the grain model (client code, a test, host code) that grains can call back through a reference
/// made by <see cref="IGrainFactory.CreateObjectReference{T}(IGrainObserver)"/>.
/// </summary>
public interface IGrainObserver : IAddressable;

/// <summary>
/// An interface implemented by an object attached to an activation rather than by the grain class itself
/// (stream consumers use one). Calls to it follow the grain's turn rules.
/// </summary>
public interface IGrainExtension : IAddressable;
