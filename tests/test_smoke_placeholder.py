def test_import():
    import jaxvision
    assert jaxvision.__doc__
