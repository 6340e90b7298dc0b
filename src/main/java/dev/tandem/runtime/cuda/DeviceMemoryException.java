package dev.tandem.runtime.cuda;

import dev.tandem.runtime.BackendUnavailableException;

/** The device has too little free memory for a model or its K/V cache; the message names both numbers. */
public class DeviceMemoryException extends BackendUnavailableException {
    public DeviceMemoryException(String message) { super(message); }
}
