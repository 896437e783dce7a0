"""Planning: size servers, storage and network; place cameras and plate readers."""
