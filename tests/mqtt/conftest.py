from tests.mqtt.rig import make_mqtt_rig, mosquitto, mqtt_rig

__all__ = ["make_mqtt_rig", "mosquitto", "mqtt_rig"]
