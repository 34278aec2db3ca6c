using Orleans.LIFL.Timers;

namespace Orleans.LIFL;

/// <summary>One activation as its grain sees it.</summary>
public interface IGrainContext
{
    GrainId GrainId { get; }

    /// <summary>The grain object (null while it is being constructed).</summary>
    object? GrainInstance { get; }

    /// <summary>The silo the activation lives on.</summary>
    SiloAddress Silo { get; }

    IServiceProvider ActivationServices { get; }

    IGrainFactory GrainFactory { get; }

    /// <summary>Deactivate once no request is running or waiting.</summary>
    void DeactivateOnIdle();

    /// <summary>Do not collect this activation for idleness before <paramref name="timeSpan"/> has passed.</summary>
    void DelayDeactivation(TimeSpan timeSpan);

    IGrainTimer RegisterGrainTimer<TState>(Func<TState, CancellationToken, Task> callback, TState state, GrainTimerCreationOptions options);

    /// <summary>The extension object of the given interface on this activation, created on first use.</summary>
    TExtension GetExtension<TExtension>()
        where TExtension : class, IGrainExtension;

    /// <summary>Used by generated grain factories for constructor parameters marked [PersistentState].</summary>
    Persistence.IPersistentState<TState> GetPersistentState<TState>(string stateName, string? storageName);
}
